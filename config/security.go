package config

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/exactly-dev/exactly/internal/suggest"
)

// KafkaTLS configures TLS on every broker connection (Java:
// security.protocol SSL or SASL_SSL and the ssl.* settings). TLS 1.2 is
// the minimum version, always.
type KafkaTLS struct {
	// Enabled (kafka.tls.enabled) encrypts every broker connection and
	// verifies the brokers' certificates. Default false: plaintext.
	// TLS against a plaintext listener, or plaintext against a TLS one,
	// fails the first request; kgo's error then asks "is TLS
	// misconfigured?". The other kafka.tls settings are an error while
	// this is false, so that a connection the user believes encrypted is
	// never plaintext.
	Enabled bool `mapstructure:"enabled"`

	// CAFile (kafka.tls.ca_file) is a PEM file of the CA certificates
	// that sign the brokers' certificates (Java: ssl.truststore.location).
	// Default empty: the system roots. Read at start: an unreadable file,
	// or one without a certificate, is an error. A wrong CA fails every
	// connection with "x509: certificate signed by unknown authority".
	CAFile string `mapstructure:"ca_file"`

	// CertFile (kafka.tls.cert_file) and KeyFile (kafka.tls.key_file) are
	// the PEM client certificate (chain) and its private key, presented
	// to brokers that require mutual TLS (Java: ssl.keystore.location,
	// broker ssl.client.auth=required). Both or neither; they must match.
	// Default empty: no client certificate, and a broker requiring one
	// fails the handshake ("certificate required").
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`

	// ServerName (kafka.tls.server_name) is the name every broker
	// certificate is verified against, and the SNI sent. Default empty:
	// the host of the address dialled, seed or advertised. Set it when
	// brokers are reached through a name their certificates do not hold
	// (a tunnel, a proxy).
	ServerName string `mapstructure:"server_name"`

	// InsecureSkipVerify (kafka.tls.insecure_skip_verify) accepts any
	// broker certificate: the traffic is encrypted but anyone on the path
	// can pose as the broker and read it (Java: an empty
	// ssl.endpoint.identification.algorithm goes half as far). Default
	// false. For tests only; KafkaOpts and Warnings return a warning
	// while it is set.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// SASL mechanisms, the values of kafka.sasl.mechanism.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
	MechanismOAuthBearer = "OAUTHBEARER"
	MechanismAWSMSKIAM   = "AWS_MSK_IAM"
)

var mechanisms = []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512, MechanismOAuthBearer, MechanismAWSMSKIAM}

// SASL configures SASL authentication on every broker connection (Java:
// sasl.mechanism and sasl.jaas.config). A setting the chosen mechanism
// does not use is an error, so a typo in the mechanism does not silently
// drop credentials.
type SASL struct {
	// Mechanism (kafka.sasl.mechanism): "" (no SASL), PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM, spelled
	// exactly so. Default "". A mechanism the broker does not enable fails
	// every connection with UNSUPPORTED_SASL_MECHANISM; wrong credentials
	// with SASL_AUTHENTICATION_FAILED, or the broker closing the
	// connection.
	Mechanism string `mapstructure:"mechanism"`

	// Username (kafka.sasl.username) for PLAIN and SCRAM. Required by
	// them. Default empty.
	Username string `mapstructure:"username"`

	// Password (kafka.sasl.password, secret) for PLAIN and SCRAM, or
	// PasswordFile (kafka.sasl.password_file), a file read once at start
	// whose trailing newlines are dropped. One of them is required by
	// PLAIN and SCRAM; both is an error. Default empty.
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`

	OAuth OAuth `mapstructure:"oauth"`
	AWS   AWS   `mapstructure:"aws"`

	// AllowPlainWithoutTLS (kafka.sasl.allow_plain_without_tls) lets PLAIN
	// run without kafka.tls.enabled. PLAIN sends the password as is, so
	// anyone who can see the traffic can read it. Default false: PLAIN
	// without TLS is an error. When set, a warning remains. Use it only
	// where the network path is otherwise private (loopback, an encrypted
	// overlay).
	AllowPlainWithoutTLS bool `mapstructure:"allow_plain_without_tls"`
}

// OAuth configures OAUTHBEARER.
type OAuth struct {
	// TokenFile (kafka.sasl.oauth.token_file) holds the bearer token
	// (trailing newlines dropped). Required by OAUTHBEARER; it must be
	// readable and non-empty at start. It is read again whenever a
	// connection authenticates and the file has changed (by modification
	// time and size), so whatever refreshes it (a sidecar, a projected
	// Kubernetes token) rotates the token without a restart. If it
	// becomes unreadable, new connections fail with an error naming the
	// file until it is back. Default empty.
	TokenFile string `mapstructure:"token_file"`
}

// AWS configures AWS_MSK_IAM. The keys are static: they are read once at
// start. With none of AccessKey, SecretKey and SessionToken set, the
// standard AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
// environment variables are used; instance profiles, IRSA web identities
// and SSO are not (franz-go needs explicit keys).
type AWS struct {
	// AccessKey (kafka.sasl.aws.access_key) is the access key id. Shown in
	// Redacted, as AWS treats the id as an identifier, not a secret.
	// Required with SecretKey. Default empty.
	AccessKey string `mapstructure:"access_key"`

	// SecretKey (kafka.sasl.aws.secret_key, secret) or SecretKeyFile
	// (kafka.sasl.aws.secret_key_file). One of them with AccessKey; both
	// is an error. Default empty.
	SecretKey     Secret `mapstructure:"secret_key"`
	SecretKeyFile string `mapstructure:"secret_key_file"`

	// SessionToken (kafka.sasl.aws.session_token, secret) or
	// SessionTokenFile (kafka.sasl.aws.session_token_file), for temporary
	// credentials (STS). Optional, only with AccessKey. Default empty.
	SessionToken     Secret `mapstructure:"session_token"`
	SessionTokenFile string `mapstructure:"session_token_file"`
}

// HTTPTLS serves the HTTP listener over TLS.
type HTTPTLS struct {
	// CertFile (http.tls.cert_file) and KeyFile (http.tls.key_file) are a
	// PEM certificate (chain) and its key. Both or neither; they must be
	// loadable at start. Default empty: plain HTTP. TLS 1.2 is the
	// minimum version.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
}

// BasicAuth requires HTTP basic authentication on /metrics and /readyz
// (/livez stays open for the kubelet).
type BasicAuth struct {
	// Username (http.basic_auth.username), without ':'. Default empty: no
	// authentication. Needs a password.
	Username string `mapstructure:"username"`
	// Password (http.basic_auth.password, secret) or PasswordFile
	// (http.basic_auth.password_file, read once at start). One of them
	// with Username; both is an error. Without http.tls the password
	// crosses the network readable, which Warnings reports.
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
}

// KafkaOpts returns the client options that secure broker connections:
// kgo.DialTLSConfig when kafka.tls.enabled, kgo.SASL when
// kafka.sasl.mechanism is set, nothing otherwise. Every Kafka client of the
// process must be built with them; they can be reused for any number of
// clients (OAUTHBEARER re-reads its token file per connection).
//
// The warnings are for the log, once (the Kafka lines of Warnings). The
// error names each bad setting and its fix; Load has already reported
// them, so with Settings from Load it comes only from files that changed
// since. Neither ever holds a secret value.
func (s *Settings) KafkaOpts() ([]kgo.Opt, []string, error) {
	opts := []kgo.Opt{kgo.ProducerLinger(s.Kafka.Linger)}
	var probs []problem
	if s.Kafka.TLS.Enabled {
		cfg, ps := s.Kafka.TLS.config()
		probs = append(probs, ps...)
		if cfg != nil {
			opts = append(opts, kgo.DialTLSConfig(cfg))
		}
	} else {
		probs = append(probs, s.Kafka.TLS.unused()...)
	}
	mech, ps := s.Kafka.mechanism()
	probs = append(probs, ps...)
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	if len(probs) > 0 {
		errs := make(Errors, len(probs))
		for i, p := range probs {
			errs[i] = &Error{Key: p.key, Msg: p.msg}
		}
		return nil, nil, errs
	}
	return opts, s.Kafka.warnings(), nil
}

// Warnings lists settings that work but weaken security, for the log at
// start and for "exactly validate". It reads nothing.
func (s *Settings) Warnings() []string {
	w := s.Kafka.warnings()
	if s.HTTP.Addr != "" && s.HTTP.BasicAuth.Username != "" && s.HTTP.TLS.CertFile == "" {
		w = append(w, "http.basic_auth is set without http.tls.cert_file: the password crosses the network readable by anyone on the path; serve over TLS")
	}
	return w
}

func (k *Kafka) warnings() []string {
	var w []string
	if k.TLS.Enabled && k.TLS.InsecureSkipVerify {
		w = append(w, "kafka.tls.insecure_skip_verify is set: broker certificates are not verified, so anyone on the network path can pose as a broker and read the traffic, credentials included; set kafka.tls.ca_file instead")
	}
	if k.TLS.Enabled {
		return w
	}
	switch k.SASL.Mechanism {
	case MechanismPlain:
		if k.SASL.AllowPlainWithoutTLS {
			w = append(w, "kafka.sasl.mechanism PLAIN without kafka.tls.enabled (allowed by kafka.sasl.allow_plain_without_tls): the password crosses the network readable")
		}
	case MechanismOAuthBearer:
		w = append(w, "kafka.sasl.mechanism OAUTHBEARER without kafka.tls.enabled: the bearer token crosses the network readable and can be replayed")
	case MechanismAWSMSKIAM:
		w = append(w, "kafka.sasl.mechanism AWS_MSK_IAM without kafka.tls.enabled: MSK serves IAM authentication only on its TLS listener (port 9098)")
	}
	return w
}

// problem is a bad setting found without knowing where its value came
// from; validate adds the source, KafkaOpts reports it as is.
type problem struct{ key, msg string }

// securityProblems checks the TLS, SASL and HTTP security settings,
// reading every file they name but touching no network.
func (s *Settings) securityProblems() []problem {
	var probs []problem
	add := func(key, format string, args ...any) {
		probs = append(probs, problem{key, fmt.Sprintf(format, args...)})
	}
	embedded := slices.Contains(s.Kafka.Brokers, Embedded)
	if s.Kafka.TLS.Enabled {
		_, ps := s.Kafka.TLS.config()
		probs = append(probs, ps...)
		if embedded {
			add("kafka.tls.enabled", "the embedded broker serves plaintext only: set kafka.brokers to a cluster, or turn TLS off")
		}
	} else {
		probs = append(probs, s.Kafka.TLS.unused()...)
	}
	_, ps := s.Kafka.mechanism()
	probs = append(probs, ps...)
	if embedded && s.Kafka.SASL.Mechanism != "" {
		add("kafka.sasl.mechanism", "the embedded broker has no SASL: set kafka.brokers to a cluster, or unset kafka.sasl.mechanism")
	}

	h := s.HTTP
	if (h.TLS.CertFile == "") != (h.TLS.KeyFile == "") {
		if h.TLS.CertFile == "" {
			add("http.tls.key_file", "set without http.tls.cert_file: set both to serve over TLS, or neither")
		} else {
			add("http.tls.cert_file", "set without http.tls.key_file: set both to serve over TLS, or neither")
		}
	} else if h.TLS.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(h.TLS.CertFile, h.TLS.KeyFile); err != nil {
			add("http.tls.cert_file", "cannot load the pair %s and http.tls.key_file %s: %v", h.TLS.CertFile, h.TLS.KeyFile, err)
		}
	}
	pass, err := secretValue(h.BasicAuth.Password, h.BasicAuth.PasswordFile)
	switch {
	case err != nil:
		add("http.basic_auth.password_file", "%v", err)
	case h.BasicAuth.Username == "" && pass != "":
		add("http.basic_auth.password", "set without http.basic_auth.username: set both, or neither")
	case h.BasicAuth.Username != "" && pass == "":
		add("http.basic_auth.username", "set without a password: set http.basic_auth.password (or EXACTLY_HTTP_BASIC_AUTH_PASSWORD) or http.basic_auth.password_file")
	}
	if strings.Contains(h.BasicAuth.Username, ":") {
		add("http.basic_auth.username", "%q holds ':', which basic auth cannot carry in a user name (RFC 7617)", h.BasicAuth.Username)
	}
	probs = append(probs, s.Registry.problems()...)
	return probs
}

// unused reports TLS settings made while TLS is off.
func (t *KafkaTLS) unused() []problem {
	var probs []problem
	for _, f := range []struct {
		key string
		set bool
	}{
		{"kafka.tls.ca_file", t.CAFile != ""},
		{"kafka.tls.cert_file", t.CertFile != ""},
		{"kafka.tls.key_file", t.KeyFile != ""},
		{"kafka.tls.server_name", t.ServerName != ""},
		{"kafka.tls.insecure_skip_verify", t.InsecureSkipVerify},
	} {
		if f.set {
			probs = append(probs, problem{f.key, "set, but kafka.tls.enabled is false, so connections are plaintext: set kafka.tls.enabled: true, or remove it"})
		}
	}
	return probs
}

// config builds the client TLS config, reading the CA and key pair files.
func (t *KafkaTLS) config() (*tls.Config, []problem) {
	var probs []problem
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if t.CAFile != "" {
		pool, err := certPool(t.CAFile)
		if err != nil {
			probs = append(probs, problem{"kafka.tls.ca_file", err.Error() + ": point it at the PEM file of the CA certificates that sign the brokers' certificates"})
		}
		cfg.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		probs = append(probs, problem{"kafka.tls.cert_file", "set without kafka.tls.key_file: a client certificate needs its private key; set both, or neither"})
	case t.CertFile == "" && t.KeyFile != "":
		probs = append(probs, problem{"kafka.tls.key_file", "set without kafka.tls.cert_file: set both, or neither"})
	case t.CertFile != "":
		// The key file is a secret, but tls's errors name what is wrong
		// with it, never its bytes.
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			probs = append(probs, problem{"kafka.tls.cert_file", fmt.Sprintf("cannot load the client certificate %s with kafka.tls.key_file %s: %v", t.CertFile, t.KeyFile, err)})
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// certPool reads a PEM file of certificates. Unlike
// x509.CertPool.AppendCertsFromPEM, it says which block is bad instead of
// skipping it.
func certPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)", file)
	}
	return pool, nil
}

// mechanism builds the SASL mechanism, or nil for none.
func (k *Kafka) mechanism() (sasl.Mechanism, []problem) {
	var probs []problem
	add := func(key, format string, args ...any) {
		probs = append(probs, problem{key, fmt.Sprintf(format, args...)})
	}
	c := &k.SASL
	mech := c.Mechanism
	uses := map[string]bool{}
	switch mech {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		uses["kafka.sasl.username"], uses["kafka.sasl.password"] = true, true
	case MechanismOAuthBearer:
		uses["kafka.sasl.oauth.token_file"] = true
	case MechanismAWSMSKIAM:
		uses["kafka.sasl.aws"] = true
	case "":
	default:
		add("kafka.sasl.mechanism", "unknown mechanism %q%s", mech, suggestMechanism(mech))
		return nil, probs
	}
	// A credential the mechanism ignores is most likely meant for another
	// one: say so rather than authenticate without it.
	for _, f := range []struct {
		key, use string
		set      bool
	}{
		{"kafka.sasl.username", "kafka.sasl.username", c.Username != ""},
		// Load puts a *_file secret into its value: count the value as
		// set only when it did not come from the file.
		{"kafka.sasl.password", "kafka.sasl.password", c.Password != "" && c.PasswordFile == ""},
		{"kafka.sasl.password_file", "kafka.sasl.password", c.PasswordFile != ""},
		{"kafka.sasl.oauth.token_file", "kafka.sasl.oauth.token_file", c.OAuth.TokenFile != ""},
		{"kafka.sasl.aws.access_key", "kafka.sasl.aws", c.AWS.AccessKey != ""},
		{"kafka.sasl.aws.secret_key", "kafka.sasl.aws", c.AWS.SecretKey != "" && c.AWS.SecretKeyFile == ""},
		{"kafka.sasl.aws.secret_key_file", "kafka.sasl.aws", c.AWS.SecretKeyFile != ""},
		{"kafka.sasl.aws.session_token", "kafka.sasl.aws", c.AWS.SessionToken != "" && c.AWS.SessionTokenFile == ""},
		{"kafka.sasl.aws.session_token_file", "kafka.sasl.aws", c.AWS.SessionTokenFile != ""},
	} {
		if f.set && !uses[f.use] {
			if mech == "" {
				add(f.key, "set, but kafka.sasl.mechanism is empty, so connections do not authenticate: set the mechanism, or remove it")
			} else {
				add(f.key, "set, but kafka.sasl.mechanism %s does not use it: remove it, or fix the mechanism", mech)
			}
		}
	}

	switch mech {
	case MechanismPlain, MechanismScramSHA256, MechanismScramSHA512:
		if c.Username == "" {
			add("kafka.sasl.username", "required by kafka.sasl.mechanism %s", mech)
		}
		pass, err := secretValue(c.Password, c.PasswordFile)
		if err != nil {
			add("kafka.sasl.password_file", "%v", err)
		} else if pass == "" {
			add("kafka.sasl.password", "required by kafka.sasl.mechanism %s: set it (or EXACTLY_KAFKA_SASL_PASSWORD), or kafka.sasl.password_file", mech)
		}
		if mech == MechanismPlain && !k.TLS.Enabled && !c.AllowPlainWithoutTLS {
			add("kafka.sasl.mechanism", "PLAIN sends the password in clear text and kafka.tls.enabled is false, so anyone who can see the traffic can read it: "+
				"set kafka.tls.enabled: true, use SCRAM-SHA-512 (which never sends the password), "+
				"or accept the risk with kafka.sasl.allow_plain_without_tls: true")
		}
		if len(probs) > 0 {
			return nil, probs
		}
		switch mech {
		case MechanismPlain:
			return plain.Auth{User: c.Username, Pass: pass}.AsMechanism(), nil
		case MechanismScramSHA256:
			return scram.Auth{User: c.Username, Pass: pass}.AsSha256Mechanism(), nil
		default:
			return scram.Auth{User: c.Username, Pass: pass}.AsSha512Mechanism(), nil
		}

	case MechanismOAuthBearer:
		if c.OAuth.TokenFile == "" {
			add("kafka.sasl.oauth.token_file", "required by kafka.sasl.mechanism OAUTHBEARER: the file holding the bearer token")
			return nil, probs
		}
		tf := &tokenFile{path: c.OAuth.TokenFile}
		if _, err := tf.token(); err != nil {
			add("kafka.sasl.oauth.token_file", "%v", err)
		}
		if len(probs) > 0 {
			return nil, probs
		}
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			tok, err := tf.token()
			return oauth.Auth{Token: tok}, err
		}), nil

	case MechanismAWSMSKIAM:
		auth, ps := c.AWS.auth()
		probs = append(probs, ps...)
		if len(probs) > 0 {
			return nil, probs
		}
		return auth.AsManagedStreamingIAMMechanism(), nil
	}
	return nil, probs
}

func (a *AWS) auth() (aws.Auth, []problem) {
	var probs []problem
	secret, err := secretValue(a.SecretKey, a.SecretKeyFile)
	if err != nil {
		probs = append(probs, problem{"kafka.sasl.aws.secret_key_file", err.Error()})
	}
	token, err := secretValue(a.SessionToken, a.SessionTokenFile)
	if err != nil {
		probs = append(probs, problem{"kafka.sasl.aws.session_token_file", err.Error()})
	}
	if len(probs) > 0 {
		return aws.Auth{}, probs
	}
	switch {
	case a.AccessKey != "" && secret != "":
		return aws.Auth{AccessKey: a.AccessKey, SecretKey: secret, SessionToken: token}, nil
	case a.AccessKey != "":
		return aws.Auth{}, []problem{{"kafka.sasl.aws.access_key", "set without kafka.sasl.aws.secret_key: set it (or EXACTLY_KAFKA_SASL_AWS_SECRET_KEY), or kafka.sasl.aws.secret_key_file"}}
	case secret != "" || token != "":
		key := "kafka.sasl.aws.secret_key"
		if secret == "" {
			key = "kafka.sasl.aws.session_token"
		}
		return aws.Auth{}, []problem{{key, "set without kafka.sasl.aws.access_key: set it too, or remove the kafka.sasl.aws settings to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}}
	}
	// Nothing set: the standard environment, all of it or none, so a
	// session token is never paired with keys from elsewhere.
	id, key := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || key == "" {
		return aws.Auth{}, []problem{{"kafka.sasl.aws.access_key", "AWS_MSK_IAM needs keys: set kafka.sasl.aws.access_key and kafka.sasl.aws.secret_key (or secret_key_file), " +
			"or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (instance profiles and web identities are not supported)"}}
	}
	return aws.Auth{AccessKey: id, SecretKey: key, SessionToken: os.Getenv("AWS_SESSION_TOKEN")}, nil
}

func suggestMechanism(m string) string {
	if hint := suggest.DidYouMean(m, mechanisms); hint != "" {
		return hint
	}
	if strings.ToUpper(m) == "GSSAPI" {
		return ": GSSAPI (Kerberos) is not supported; want " + strings.Join(mechanisms, ", ") + ", or empty for none"
	}
	return "; want " + strings.Join(mechanisms, ", ") + ", or empty for none"
}

// tokenFile reads an OAUTHBEARER token, again only when the file changed.
// Kubernetes and most refreshers replace the file (rename or symlink
// swap), which changes its modification time; an in-place rewrite within
// one timestamp tick that keeps the size is not noticed until the next
// change.
type tokenFile struct {
	path string

	mu struct {
		sync.Mutex
		mod  time.Time
		size int64
		tok  string
	}
}

func (f *tokenFile) token() (string, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return "", fmt.Errorf("cannot read the OAUTHBEARER token: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.tok != "" && fi.ModTime().Equal(f.mu.mod) && fi.Size() == f.mu.size {
		return f.mu.tok, nil
	}
	tok, err := readSecretFile(f.path)
	if err != nil {
		return "", fmt.Errorf("cannot read the OAUTHBEARER token: %w", err)
	}
	f.mu.mod, f.mu.size, f.mu.tok = fi.ModTime(), fi.Size(), tok
	return tok, nil
}

// readSecretFile returns a file's contents without trailing newlines
// (echo and most editors add one). Its errors never quote the contents.
func readSecretFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	v := strings.TrimRight(string(data), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return v, nil
}

// secretValue is the value if set, else the file's contents if a file is
// set. Load has already put the file's contents into the value; this
// serves Settings built by hand.
func secretValue(v Secret, file string) (string, error) {
	if v != "" || file == "" {
		return string(v), nil
	}
	return readSecretFile(file)
}

// secretRef ties a secret setting to its *_file variant.
type secretRef struct {
	key, fileKey string
	val          *Secret
	file         *string
}

func (s *Settings) secretRefs() []secretRef {
	return []secretRef{
		{"kafka.sasl.password", "kafka.sasl.password_file", &s.Kafka.SASL.Password, &s.Kafka.SASL.PasswordFile},
		{"kafka.sasl.aws.secret_key", "kafka.sasl.aws.secret_key_file", &s.Kafka.SASL.AWS.SecretKey, &s.Kafka.SASL.AWS.SecretKeyFile},
		{"kafka.sasl.aws.session_token", "kafka.sasl.aws.session_token_file", &s.Kafka.SASL.AWS.SessionToken, &s.Kafka.SASL.AWS.SessionTokenFile},
		{"http.basic_auth.password", "http.basic_auth.password_file", &s.HTTP.BasicAuth.Password, &s.HTTP.BasicAuth.PasswordFile},
		{"registry.basic_auth.password", "registry.basic_auth.password_file", &s.Registry.BasicAuth.Password, &s.Registry.BasicAuth.PasswordFile},
		{"registry.bearer_token", "registry.bearer_token_file", &s.Registry.BearerToken, &s.Registry.BearerTokenFile},
	}
}

// secretKeys are the settings whose values are never shown.
var secretKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range new(Settings).secretRefs() {
		m[r.key] = true
	}
	return m
}()

// readSecretFiles reads every *_file secret into its value, once, at
// start. A secret set both ways is an error: which one wins would be a
// guess.
func (s *Settings) readSecretFiles(src *sources) Errors {
	var errs Errors
	for _, r := range s.secretRefs() {
		switch {
		case *r.file == "":
		case *r.val != "":
			errs = append(errs, src.errorf(r.key, "set both as a value and as %s (%s): set one of them", r.fileKey, src.where(r.fileKey)))
		default:
			v, err := readSecretFile(*r.file)
			if err != nil {
				// validate reads it again and reports the same line,
				// which Load drops.
				errs = append(errs, src.errorf(r.fileKey, "%v", err))
				continue
			}
			*r.val = Secret(v)
		}
	}
	return errs
}
