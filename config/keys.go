package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// setting is one daemon setting. The list below is the one place a setting
// is declared: its key in the settings file, its default, its flag and
// help, and its row in the README's settings table all come from it, and
// its environment variable from its key (envName). The Settings struct
// holds the values; TestRedacted checks that the struct and the list name
// the same keys.
type setting struct {
	// key in the settings file, dotted ("kafka.brokers").
	key string
	// def is the default, typed as the field the key decodes into
	// (time.Duration, int64, []string ...): decodeProblem and addFlags go
	// by its type. A func() any is called at each Load (the host name).
	def any
	// flag is the command-line flag, without dashes; "" for none. Secrets
	// never have one: the command line is readable by every user of the
	// host (ps, /proc/<pid>/cmdline).
	flag string
	// usage is the flag's help, ending with its default as "(default x)"
	// (TestUsageDefaults checks x against def) or "(default: words)"; for
	// a setting without a flag, what the README says of it.
	usage string
	// shown is how the README shows the default, when def does not print
	// well (the host name, 64 MiB); "" prints def.
	shown string
	// doc, when set, is the README's note instead of usage (less its
	// default): for what a flag's help has no room for.
	doc string
}

// settings lists every setting, in the order of the flags' help and of the
// README table.
var settings = []setting{
	{key: "kafka.brokers", def: []string{Embedded}, flag: "brokers",
		usage: `seed brokers host:port, or "embedded" for an in-process broker (default embedded)`},
	{key: "kafka.client_id", def: "exactly", flag: "client-id",
		usage: `client id sent to brokers (default "exactly")`},
	{key: "kafka.transaction_timeout", def: 10 * time.Second, flag: "transaction-timeout",
		usage: "broker-side transaction timeout, below the session timeout (default 10s)"},
	{key: "kafka.session_timeout", def: 45 * time.Second, flag: "session-timeout",
		usage: "consumer group session timeout (default 45s)"},
	{key: "kafka.rebalance_timeout", def: 60 * time.Second, flag: "rebalance-timeout",
		usage: "how long a rebalance waits for members to rejoin (default 60s)"},
	{key: "kafka.linger", def: 5 * time.Millisecond, flag: "linger",
		usage: "how long the producer waits to fill a batch (default 5ms)",
		doc:   "how long the producer waits to fill a batch; what still lingers when a transaction ends delays its commit, 0 sends small batches when processing is slower than the network"},
	{key: "kafka.static_membership", def: false, flag: "static-membership",
		usage: "join as a static group member: a restart within the session timeout keeps its partitions, a stop does not leave the group",
		doc:   "join as a static member (KIP-345) with id `<pipeline>-<instance_id>`: a restart within the session timeout keeps its partitions without a rebalance; a stop does not leave the group"},
	{key: "instance_id", def: func() any { host, _ := os.Hostname(); return host }, flag: "instance-id",
		usage: "stable id of this replica; transactional id is <pipeline>-<instance-id> (default: host name)",
		shown: "host name",
		doc:   "stable id of this replica; transactional id is `<pipeline>-<instance_id>`"},
	{key: "commit_interval", def: 100 * time.Millisecond, flag: "commit-interval",
		usage: "how long a transaction collects records before committing (default 100ms)",
		doc:   "how long a transaction collects records before committing; a pipeline's `commit_interval` wins"},
	{key: "shutdown_timeout", def: 30 * time.Second, flag: "shutdown-timeout",
		usage: "bound on a graceful stop (default 30s)"},
	{key: "http.addr", def: ":9090", flag: "http-addr",
		usage: `listen address for /metrics, /livez and /readyz; "" with --http-addr= turns it off (default ":9090")`,
		doc:   "listen address for `/metrics`, `/livez`, `/readyz`; empty turns it off"},
	{key: "state.dir", def: "", flag: "state-dir",
		usage: "keep aggregate state on disk (Pebble) here; empty: in memory",
		shown: "(memory)",
		doc:   "keep aggregate state on disk (Pebble) here; empty: in memory, restored in full from the changelogs at every start"},
	{key: "state.cache_bytes", def: int64(64 << 20), flag: "state-cache-bytes",
		usage: "block cache shared by on-disk stores (default 64 MiB)",
		shown: "64 MiB"},
	{key: "state.repartition_purge_interval", def: 30 * time.Second, flag: "repartition-purge-interval",
		usage: "how often committed records are deleted from repartition topics; 0s never (default 30s)",
		doc:   "how often records the group committed past are deleted from repartition topics (kept with `retention.ms=-1`); `0s` never"},
	{key: "embedded.port", def: 0, flag: "embedded-port",
		usage: "port of the embedded broker (default: a free port)",
		shown: "free port"},
	{key: "embedded.partitions", def: 3, flag: "embedded-partitions",
		usage: "partitions of topics the embedded broker creates (default 3)"},
	{key: "log.level", def: "info", flag: "log-level",
		usage: "debug, info, warn or error (default info)"},
	{key: "log.format", def: "text", flag: "log-format",
		usage: "text or json (default text)"},

	{key: "kafka.tls.enabled", def: false, flag: "kafka-tls",
		usage: "connect to brokers over TLS 1.2+ (default false)"},
	{key: "kafka.tls.ca_file", def: "", flag: "kafka-tls-ca-file",
		usage: "PEM file of the CAs that sign the brokers' certificates (default: system roots)",
		shown: "system roots"},
	{key: "kafka.tls.cert_file", def: "", flag: "kafka-tls-cert-file",
		usage: "PEM client certificate for mutual TLS; needs --kafka-tls-key-file"},
	{key: "kafka.tls.key_file", def: "", flag: "kafka-tls-key-file",
		usage: "PEM private key of --kafka-tls-cert-file"},
	{key: "kafka.tls.server_name", def: "", flag: "kafka-tls-server-name",
		usage: "name to verify the brokers' certificates against and send as SNI (default: each broker's host)",
		shown: "each broker's host"},
	{key: "kafka.tls.insecure_skip_verify", def: false, flag: "kafka-tls-insecure-skip-verify",
		usage: "accept any broker certificate; for tests only (default false)"},
	{key: "kafka.sasl.mechanism", def: "", flag: "sasl-mechanism",
		usage: "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM (default: no SASL)",
		shown: "none",
		doc:   "`PLAIN` (only over TLS unless `allow_plain_without_tls`), `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER` (`oauth.token_file`, re-read on change), `AWS_MSK_IAM`"},
	{key: "kafka.sasl.username", def: "", flag: "sasl-username",
		usage: "SASL user for PLAIN and SCRAM"},
	{key: "kafka.sasl.password", def: "",
		usage: "SASL password for PLAIN and SCRAM"},
	{key: "kafka.sasl.password_file", def: "", flag: "sasl-password-file",
		usage: "file holding the SASL password (there is no password flag: use this, the settings file or EXACTLY_KAFKA_SASL_PASSWORD)"},
	{key: "kafka.sasl.oauth.token_file", def: "", flag: "sasl-oauth-token-file",
		usage: "file holding the OAUTHBEARER token, re-read when it changes"},
	{key: "kafka.sasl.aws.access_key", def: "",
		usage: "AWS_MSK_IAM access key id; with none of the kafka.sasl.aws keys set, AWS_ACCESS_KEY_ID and the other standard variables"},
	{key: "kafka.sasl.aws.secret_key", def: "",
		usage: "AWS_MSK_IAM secret key"},
	{key: "kafka.sasl.aws.secret_key_file", def: "",
		usage: "file holding the AWS_MSK_IAM secret key"},
	{key: "kafka.sasl.aws.session_token", def: "",
		usage: "AWS_MSK_IAM session token, for temporary credentials"},
	{key: "kafka.sasl.aws.session_token_file", def: "",
		usage: "file holding the AWS_MSK_IAM session token"},
	{key: "kafka.sasl.allow_plain_without_tls", def: false, flag: "sasl-allow-plain-without-tls",
		usage: "allow SASL PLAIN over plaintext, sending the password readable on the wire (default false)"},
	{key: "http.tls.cert_file", def: "", flag: "http-tls-cert-file",
		usage: "PEM certificate to serve /metrics, /livez and /readyz over TLS; needs --http-tls-key-file"},
	{key: "http.tls.key_file", def: "", flag: "http-tls-key-file",
		usage: "PEM private key of --http-tls-cert-file"},
	{key: "http.basic_auth.username", def: "", flag: "http-basic-auth-username",
		usage: "require HTTP basic auth on /metrics and /readyz with this user"},
	{key: "http.basic_auth.password", def: "",
		usage: "basic auth password"},
	{key: "http.basic_auth.password_file", def: "", flag: "http-basic-auth-password-file",
		usage: "file holding the basic auth password (or EXACTLY_HTTP_BASIC_AUTH_PASSWORD)"},
	{key: "registry.urls", def: []string{}, flag: "registry",
		usage: "Schema Registry base URLs (http:// or https://), for the avro, protobuf and json_schema formats; empty: no registry",
		shown: "(none)",
		doc:   "Schema Registry base URLs (`http://` or `https://`), tried in turn; needed by the `avro`, `protobuf` and `json_schema` formats, which then fail at start without it; `exactly validate --registry URL` type-checks expressions against the registered schemas"},
	{key: "registry.basic_auth.username", def: "", flag: "registry-username",
		usage: "Schema Registry basic auth user"},
	{key: "registry.basic_auth.password", def: "",
		usage: "Schema Registry basic auth password"},
	{key: "registry.basic_auth.password_file", def: "", flag: "registry-password-file",
		usage: "file holding the Schema Registry password (or EXACTLY_REGISTRY_BASIC_AUTH_PASSWORD)"},
	{key: "registry.bearer_token", def: "",
		usage: "Schema Registry bearer token, instead of basic auth"},
	{key: "registry.bearer_token_file", def: "", flag: "registry-bearer-token-file",
		usage: "file holding the Schema Registry bearer token (or EXACTLY_REGISTRY_BEARER_TOKEN)"},
	{key: "registry.tls.ca_file", def: "", flag: "registry-tls-ca-file",
		usage: "PEM file of the CAs that sign the registry's certificate (default: system roots)",
		shown: "system roots"},
	{key: "registry.tls.cert_file", def: "", flag: "registry-tls-cert-file",
		usage: "PEM client certificate for mutual TLS with the registry; needs --registry-tls-key-file"},
	{key: "registry.tls.key_file", def: "", flag: "registry-tls-key-file",
		usage: "PEM private key of --registry-tls-cert-file"},
	{key: "registry.tls.insecure_skip_verify", def: false, flag: "registry-tls-insecure-skip-verify",
		usage: "accept any registry certificate; for tests only (default false)"},
	{key: "registry.timeout", def: 10 * time.Second, flag: "registry-timeout",
		usage: "bound on one registry request; a failed one is tried again with backoff (default 10s)"},
}

// defaults maps every key to its default; it is also the set of known
// keys, so a settings file with an unknown key is an error.
func defaults() map[string]any {
	m := make(map[string]any, len(settings))
	for _, s := range settings {
		d := s.def
		if f, ok := d.(func() any); ok {
			d = f()
		}
		m[s.key] = d
	}
	return m
}

// flagKeys maps flag names to the keys they set.
var flagKeys = func() map[string]string {
	m := map[string]string{}
	for _, s := range settings {
		if s.flag != "" {
			m[s.flag] = s.key
		}
	}
	return m
}()

// envName is the environment variable that sets key: EXACTLY_ plus the key
// upper-cased, dots as underscores (kafka.brokers: EXACTLY_KAFKA_BROKERS).
// Load gives viper the same rule.
func envName(key string) string {
	return "EXACTLY_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// AddFlags adds a flag for every setting, plus --settings for the file, to
// fs. Flag defaults are left empty: the defaults above apply unless a flag
// is set.
func AddFlags(fs *pflag.FlagSet) { addFlags(fs) }

func addFlags(fs *pflag.FlagSet) {
	fs.String("settings", "", "daemon settings file (YAML); env EXACTLY_SETTINGS")
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		switch s.def.(type) {
		case []string:
			fs.StringSlice(s.flag, nil, s.usage)
		case bool:
			fs.Bool(s.flag, false, s.usage)
		case time.Duration:
			fs.Duration(s.flag, 0, s.usage)
		case int64:
			fs.Int64(s.flag, 0, s.usage)
		case int:
			fs.Int(s.flag, 0, s.usage)
		default: // string, or the host name
			fs.String(s.flag, "", s.usage)
		}
		if s.key == "kafka.brokers" {
			fs.Bool("embedded", false, "shorthand for --brokers=embedded")
		}
	}
}

// defaultText is the default as the README and a flag's help show it.
func (s setting) defaultText() string {
	if s.shown != "" {
		return s.shown
	}
	switch d := s.def.(type) {
	case []string:
		return strings.Join(d, ",")
	case time.Duration:
		if d >= time.Minute && d%time.Second == 0 {
			return fmt.Sprintf("%ds", d/time.Second) // 60s, not 1m0s
		}
		return d.String()
	}
	return fmt.Sprint(s.def)
}

// usageDefault matches the default a flag's help ends with.
var usageDefault = regexp.MustCompile(` \(default(:)? ([^)]*)\)$`)

// note is what the README says of s.
func (s setting) note() string {
	if s.doc != "" {
		return s.doc
	}
	return usageDefault.ReplaceAllString(s.usage, "")
}

// ReadmeTable is the README's table of settings, in Markdown: one row per
// setting, with its flag, environment variable, default and what it does.
// TestReadmeTable keeps README.md equal to it.
func ReadmeTable() string {
	var b strings.Builder
	b.WriteString("| setting | flag | environment | default | |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range settings {
		flag := ""
		switch {
		case s.flag != "":
			flag = "`--" + s.flag + "`"
			if s.key == "kafka.brokers" {
				flag += ", `--embedded`"
			}
		case secretKeys[s.key]:
			flag = "none (secret)"
		}
		def := s.defaultText()
		switch {
		case s.shown != "":
		case def == "":
		default:
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", s.key, flag, envName(s.key), def, strings.ReplaceAll(s.note(), "|", `\|`))
	}
	return b.String()
}
