// Package config loads the daemon's settings: which brokers to talk to, who
// this instance is, how often to commit, how to log. Settings come from, in
// increasing precedence, defaults, a YAML settings file, EXACTLY_* variables
// in the environment and command-line flags.
//
// Pipelines (what to compute) are not settings: they live in topology files,
// loaded by package topology.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/exactly-dev/exactly/internal/suggest"
	"github.com/exactly-dev/exactly/internal/yamlerr"
)

// Embedded is the value of kafka.brokers that starts an in-process broker
// instead of connecting to a cluster.
const Embedded = "embedded"

// Settings are the daemon's settings. Every field names its key; the
// environment variable is EXACTLY_ plus the key upper-cased with dots as
// underscores (kafka.brokers: EXACTLY_KAFKA_BROKERS). Each key's default,
// flag and help are in the one list of keys.go.
type Settings struct {
	Kafka Kafka `mapstructure:"kafka"`

	// InstanceID (instance_id) names this replica. The transactional id is
	// <pipeline>-<instance_id>, so a restarted instance fences its
	// predecessor's open transaction at once. It must be stable across
	// restarts and unique among live replicas: two live replicas with the
	// same id fence each other and one of them stops. Default: the host
	// name (a Kubernetes pod name in a StatefulSet).
	InstanceID string `mapstructure:"instance_id"`

	// CommitInterval (commit_interval) is how long a transaction stays
	// open collecting records before it commits. Shorter means lower
	// end-to-end latency and more transactions; a pipeline may override
	// it. Default 100ms, as Kafka Streams under exactly-once. Must be
	// positive and below kafka.transaction_timeout.
	CommitInterval time.Duration `mapstructure:"commit_interval"`

	// ShutdownTimeout (shutdown_timeout) bounds a graceful stop: ending
	// the open transaction and leaving the group. Default 30s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`

	HTTP     HTTP           `mapstructure:"http"`
	Registry Registry       `mapstructure:"registry"`
	State    State          `mapstructure:"state"`
	Embedded EmbeddedBroker `mapstructure:"embedded"`
	Log      Log            `mapstructure:"log"`
}

// Kafka holds the client settings.
type Kafka struct {
	// Brokers (kafka.brokers) are the seed brokers, host:port, as a list
	// or a comma-separated string. "embedded" starts an in-process broker
	// on loopback. Default: embedded.
	Brokers []string `mapstructure:"brokers"`

	// ClientID (kafka.client_id) is sent with every request, for broker
	// logs and quotas. Default "exactly".
	ClientID string `mapstructure:"client_id"`

	// TransactionTimeout (kafka.transaction_timeout) is how long the
	// broker lets a transaction stay open before aborting it (Java:
	// transaction.timeout.ms). It must be below kafka.session_timeout so
	// that a zombie's transaction is aborted before the group can hand its
	// partitions to another member. Default 10s (Kafka Streams' value
	// under exactly-once).
	TransactionTimeout time.Duration `mapstructure:"transaction_timeout"`

	// SessionTimeout (kafka.session_timeout) is how long the group
	// coordinator waits for a heartbeat before it declares this member
	// dead and rebalances (Java: session.timeout.ms). Default 45s.
	SessionTimeout time.Duration `mapstructure:"session_timeout"`

	// RebalanceTimeout (kafka.rebalance_timeout) is how long the group
	// waits for every member to rejoin during a rebalance before it goes
	// on without the missing ones (Java: max.poll.interval.ms). A member
	// that was killed holds the rebalance up to this long. Default 60s.
	RebalanceTimeout time.Duration `mapstructure:"rebalance_timeout"`

	// Linger (kafka.linger) is how long the producer waits for more
	// records before sending a partition's batch (Java: linger.ms).
	// Default 5ms. Records still lingering when a transaction ends must
	// be sent while the pipeline waits: franz-go's own default of 10ms
	// made ending a transaction take twice as long in the bench (8.8 ms
	// flushes at an 8 ms commit interval), while 0 sends records nearly
	// one by one when processing is slower than the network, which cost
	// a JSON pipeline a quarter more CPU and the broker twice as much.
	Linger time.Duration `mapstructure:"linger"`

	// StaticMembership (kafka.static_membership) joins the group as a
	// static member (KIP-345, Java's group.instance.id), with the
	// transactional id <pipeline>-<instance_id> as its group instance
	// id: a replica restarted within the session timeout gets its
	// partitions back without a rebalance, and a stop does not leave the
	// group (its partitions wait, up to the session timeout). Suits a
	// StatefulSet, where the instance id survives the restart. Default
	// false.
	StaticMembership bool `mapstructure:"static_membership"`

	// TLS and SASL secure the broker connections; see security.go and
	// Settings.KafkaOpts, which turns them into client options.
	TLS  KafkaTLS `mapstructure:"tls"`
	SASL SASL     `mapstructure:"sasl"`
}

// HTTP configures the listener for /metrics, /livez and /readyz.
type HTTP struct {
	// Addr (http.addr) to listen on, host:port. Empty turns the listener
	// off. Default ":9090".
	Addr string `mapstructure:"addr"`

	TLS       HTTPTLS   `mapstructure:"tls"`
	BasicAuth BasicAuth `mapstructure:"basic_auth"`
}

// State configures where aggregate steps keep their state.
type State struct {
	// Dir (state.dir) keeps state on disk in Pebble under
	// <dir>/<pipeline>-<instance_id>, so a restart replays only the tail
	// of each changelog. Empty keeps state in memory and restores it in
	// full from the changelogs on every start. Default empty.
	Dir string `mapstructure:"dir"`
	// CacheBytes (state.cache_bytes) bounds the block cache shared by
	// every on-disk store of the process. Default 64 MiB.
	CacheBytes int64 `mapstructure:"cache_bytes"`
	// RepartitionPurgeInterval (state.repartition_purge_interval) is how
	// often records the group committed past are deleted from the
	// repartition topics, which are kept with retention.ms=-1 (Kafka
	// Streams: repartition.purge.interval.ms). 0 never purges (the topics
	// then grow until purged by hand). Default 30s.
	RepartitionPurgeInterval time.Duration `mapstructure:"repartition_purge_interval"`
}

// EmbeddedBroker configures the in-process broker used when kafka.brokers
// is "embedded".
type EmbeddedBroker struct {
	// Port (embedded.port) to listen on at 127.0.0.1; 0 picks a free one.
	// Default 0.
	Port int `mapstructure:"port"`
	// Partitions (embedded.partitions) of each topic the embedded broker
	// creates for the pipeline. Default 3.
	Partitions int `mapstructure:"partitions"`
}

// Log configures logging.
type Log struct {
	// Level (log.level): debug, info, warn or error. Default info.
	Level string `mapstructure:"level"`
	// Format (log.format): text or json. Default text.
	Format string `mapstructure:"format"`
}

// Load builds Settings from defaults, the settings file (--settings or
// EXACTLY_SETTINGS), the environment and the flags in fs (which may be nil).
// Every problem is reported at once, each naming where the bad value came
// from: file:line:col and key, the environment variable, or the flag.
// Load reads the files the settings name (CA and certificate files, the
// *_file secrets, which it puts into their values, the OAUTHBEARER token
// file) but touches no network. No error quotes a secret value.
func Load(fs *pflag.FlagSet) (*Settings, error) { return loadScoped(fs, nil) }

func loadScoped(fs *pflag.FlagSet, scope Scope) (*Settings, error) {
	v := viper.New()
	for k, d := range defaults() {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("EXACTLY")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	src := &sources{fs: fs}
	file := os.Getenv("EXACTLY_SETTINGS")
	if fs != nil {
		if f, _ := fs.GetString("settings"); f != "" {
			file = f
		}
	}
	var errs Errors
	var syntax Errors // kept whatever the scope: the file was not read at all
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading settings file: %w", err)
		}
		src.file = file
		pos, ferrs := fileKeys(file, data)
		src.pos = pos
		if pos == nil {
			syntax = ferrs
		} else {
			errs = append(errs, ferrs...)
		}
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if pos != nil { // the file is valid YAML
			if err := v.ReadInConfig(); err != nil {
				return nil, fmt.Errorf("reading settings file %s: %w", file, err)
			}
		}
	}
	if fs != nil {
		for name, key := range flagKeys {
			if f := fs.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, err
				}
			}
		}
		if on, _ := fs.GetBool("embedded"); on {
			v.Set("kafka.brokers", []string{Embedded})
		}
	}

	var s Settings
	failed := map[string]bool{}
	for key, def := range defaults() {
		if !scope.uses(key) {
			continue // left at its zero value, unchecked
		}
		// Decode key by key, so one bad value names its key and the
		// others are still checked.
		if err := decodeKey(v, key, &s); err != nil {
			failed[key] = true
			if secretKeys[key] {
				// The decoder's message quotes the value.
				errs = append(errs, src.errorf(key, "want a string (the value is secret and not shown)"))
				continue
			}
			errs = append(errs, src.errorf(key, "%s", decodeProblem(v.Get(key), def, err)))
		}
	}
	errs = append(errs, s.readSecretFiles(src)...)
	errs = append(errs, s.validate(src, failed)...)
	errs = append(scope.keep(errs), syntax...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		errs = slices.CompactFunc(errs, func(a, b *Error) bool { return *a == *b })
		return nil, errs
	}
	return &s, nil
}

func decodeKey(v *viper.Viper, key string, s *Settings) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		Result:           s,
	})
	if err != nil {
		return err
	}
	// Build {a: {b: value}} for key "a.b" and decode it onto s.
	parts := strings.Split(key, ".")
	var in any = v.Get(key)
	for i := len(parts) - 1; i >= 0; i-- {
		in = map[string]any{parts[i]: in}
	}
	if err := dec.Decode(in); err != nil {
		return errors.New(stripMapstructure(err.Error()))
	}
	return nil
}

// decodeProblem says what is wrong with a value that did not decode into
// the type of its default, in one line: the value and the form wanted.
func decodeProblem(val, def any, err error) string {
	shown := fmt.Sprintf("%v", val)
	if str, ok := val.(string); ok {
		shown = strconv.Quote(str)
	}
	switch def.(type) {
	case time.Duration:
		return fmt.Sprintf("invalid duration %s: want a number and a unit (ms, s, m or h), such as 30s or 5m", shown)
	case int, int64:
		return fmt.Sprintf("invalid number %s: want a whole number", shown)
	case bool:
		return fmt.Sprintf("invalid value %s: want true or false", shown)
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// stripMapstructure keeps the useful end of a mapstructure message
// ("'kafka.session_timeout' expected ...: time: invalid duration "x"").
func stripMapstructure(msg string) string {
	if i := strings.LastIndex(msg, "error decoding "); i >= 0 {
		msg = msg[i+len("error decoding "):]
	}
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "'") {
		msg = msg[i+2:]
	}
	return msg
}

// validate checks the decoded settings. Keys in failed did not decode
// (already reported), so checks on them, or comparing another key with
// them, would only report the zero value left in their place.
func (s *Settings) validate(src *sources, failed map[string]bool) Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		if !failed[key] {
			errs = append(errs, src.errorf(key, format, args...))
		}
	}
	if len(s.Kafka.Brokers) == 0 {
		bad("kafka.brokers", `no brokers: set host:port of at least one broker, or "embedded"`)
	}
	for _, b := range s.Kafka.Brokers {
		if b == Embedded {
			if len(s.Kafka.Brokers) > 1 {
				bad("kafka.brokers", `"embedded" cannot be mixed with broker addresses`)
			}
			continue
		}
		if i := strings.LastIndexByte(b, ':'); i <= 0 || i == len(b)-1 {
			bad("kafka.brokers", "%q is not host:port", b)
		}
	}
	if s.Kafka.ClientID == "" {
		bad("kafka.client_id", "must not be empty")
	}
	if s.InstanceID == "" {
		bad("instance_id", "must not be empty: set it, or make the host name readable")
	} else if !validID(s.InstanceID) {
		bad("instance_id", "%q may only hold letters, digits, '.', '_' and '-'", s.InstanceID)
	}
	if s.CommitInterval <= 0 {
		bad("commit_interval", "must be positive, got %s", s.CommitInterval)
	}
	if s.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive, got %s", s.ShutdownTimeout)
	}
	if s.Kafka.TransactionTimeout < time.Second {
		bad("kafka.transaction_timeout", "must be at least 1s, got %s", s.Kafka.TransactionTimeout)
	}
	if s.Kafka.SessionTimeout < time.Second {
		bad("kafka.session_timeout", "must be at least 1s, got %s", s.Kafka.SessionTimeout)
	}
	if s.Kafka.RebalanceTimeout < time.Second {
		bad("kafka.rebalance_timeout", "must be at least 1s, got %s", s.Kafka.RebalanceTimeout)
	}
	if s.Kafka.Linger < 0 || s.Kafka.Linger > time.Second {
		bad("kafka.linger", "must be between 0 and 1s, got %s", s.Kafka.Linger)
	}
	if s.Kafka.TransactionTimeout >= s.Kafka.SessionTimeout && s.Kafka.TransactionTimeout > 0 && !failed["kafka.session_timeout"] {
		bad("kafka.transaction_timeout", "%s must be below kafka.session_timeout (%s), so the broker aborts a zombie's transaction before its partitions move to another member", s.Kafka.TransactionTimeout, s.Kafka.SessionTimeout)
	}
	if s.CommitInterval >= s.Kafka.TransactionTimeout && s.CommitInterval > 0 && !failed["kafka.transaction_timeout"] {
		bad("commit_interval", "%s must be below kafka.transaction_timeout (%s)", s.CommitInterval, s.Kafka.TransactionTimeout)
	}
	if s.HTTP.Addr != "" {
		if i := strings.LastIndexByte(s.HTTP.Addr, ':'); i < 0 {
			bad("http.addr", "%q is not host:port (\":9090\" listens on every interface)", s.HTTP.Addr)
		}
	}
	if s.State.RepartitionPurgeInterval < 0 {
		bad("state.repartition_purge_interval", "must be 0 (never) or more, got %s", s.State.RepartitionPurgeInterval)
	}
	if s.State.CacheBytes < 1<<20 {
		bad("state.cache_bytes", "must be at least 1 MiB, got %d", s.State.CacheBytes)
	}
	if s.Embedded.Port < 0 || s.Embedded.Port > 65535 {
		bad("embedded.port", "%d is not a port", s.Embedded.Port)
	}
	if s.Embedded.Partitions < 1 || s.Embedded.Partitions > 1000 {
		bad("embedded.partitions", "must be between 1 and 1000, got %d", s.Embedded.Partitions)
	}
	switch s.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "unknown level %q (want debug, info, warn or error)", s.Log.Level)
	}
	switch s.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "unknown format %q (want text or json)", s.Log.Format)
	}
	for _, p := range s.securityProblems() {
		bad(p.key, "%s", p.msg)
	}
	return errs
}

func validID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Error is one bad setting and where it came from.
type Error struct {
	Where string // "file:line:col", "env EXACTLY_X", "flag --x", "default", or "" when unknown
	Key   string
	Msg   string
}

// Error formats e as where: key: message, leaving out the parts that are
// unknown: Where is empty for errors from KafkaOpts, which does not know
// the sources, and Key for a syntax error that names no setting.
func (e *Error) Error() string {
	var parts []string
	for _, p := range []string{e.Where, e.Key, e.Msg} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// Errors lists every bad setting, one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sources tells where the value of a key came from.
type sources struct {
	fs   *pflag.FlagSet
	file string
	pos  map[string][2]int // key -> line, col in file
}

func (s *sources) errorf(key, format string, args ...any) *Error {
	return &Error{Where: s.where(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

func (s *sources) where(key string) string {
	if s.fs != nil {
		for name, k := range flagKeys {
			if k == key && s.fs.Changed(name) {
				return "flag --" + name
			}
		}
		if key == "kafka.brokers" && s.fs.Changed("embedded") {
			return "flag --embedded"
		}
	}
	env := envName(key)
	if _, ok := os.LookupEnv(env); ok {
		return "env " + env
	}
	if p, ok := s.pos[key]; ok {
		return fmt.Sprintf("%s:%d:%d", s.file, p[0], p[1])
	}
	return "default"
}

// fileKeys walks a settings file and returns the position of every known
// key, plus an error for each unknown one, so a typo is not silently
// ignored.
func fileKeys(file string, data []byte) (map[string][2]int, Errors) {
	known := defaults()
	pos := map[string][2]int{}
	var errs Errors
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e := yamlerr.Locate(data, err)
		return nil, Errors{{Where: fmt.Sprintf("%s:%d:%d", file, e.Line, e.Col), Key: keyAt(data, e.Line, known), Msg: e.Msg}}
	}
	if len(doc.Content) == 0 {
		return pos, nil
	}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, &Error{Where: fmt.Sprintf("%s:%d:%d", file, n.Line, n.Column), Key: strings.TrimSuffix(prefix, "."), Msg: "want a mapping"})
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			if _, ok := known[key]; ok {
				pos[key] = [2]int{val.Line, val.Column}
				continue
			}
			if isPrefix(known, key+".") {
				walk(key+".", val)
				continue
			}
			errs = append(errs, &Error{Where: fmt.Sprintf("%s:%d:%d", file, k.Line, k.Column), Key: key, Msg: "unknown setting" + suggestKey(known, key)})
		}
	}
	walk("", doc.Content[0])
	return pos, errs
}

// settingKey matches a line that sets a key in block style.
var settingKey = regexp.MustCompile(`^([ \t]*)([A-Za-z0-9_]+)\s*:`)

// keyAt returns the setting that line (1-based) of a settings file with a
// syntax error belongs to: the key on that line or the nearest above it,
// prefixed with its parents by indentation, or "" when that is not a
// known setting. A settings file is plain nested mappings, so reading the
// indentation is enough, where the YAML tree is not available.
func keyAt(data []byte, line int, known map[string]any) string {
	type level struct {
		indent int
		key    string
	}
	var stack []level
	for i, l := range strings.Split(string(data), "\n") {
		if i >= line {
			break
		}
		m := settingKey.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent := len(m[1])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, level{indent, m[2]})
	}
	parts := make([]string, len(stack))
	for i, l := range stack {
		parts[i] = l.key
	}
	key := strings.Join(parts, ".")
	if _, ok := known[key]; ok {
		return key
	}
	return ""
}

func isPrefix(known map[string]any, p string) bool {
	for k := range known {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func suggestKey(known map[string]any, key string) string {
	keys := make([]string, 0, len(known))
	for k := range known {
		keys = append(keys, k)
	}
	sort.Strings(keys) // ties go to the first: keep it stable
	return suggest.DidYouMean(key, keys)
}
