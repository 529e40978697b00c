package config

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Registry configures the Schema Registry client (Confluent's REST API,
// also served by Redpanda, Karapace and Apicurio's compatibility layer)
// that the avro format uses to look schemas up by id and to register the
// schemas of sinks. See package format's Schemas.
type Registry struct {
	// URLs (registry.urls) are the registry's base URLs, http:// or
	// https://, tried in turn by the client. Default empty: no registry,
	// and a pipeline using a registry format fails at start saying so.
	URLs []string `mapstructure:"urls"`

	// BasicAuth authenticates with a user and password (Confluent Cloud:
	// an API key and secret). Both or neither.
	BasicAuth RegistryBasicAuth `mapstructure:"basic_auth"`

	// BearerToken (registry.bearer_token, secret) or BearerTokenFile
	// (registry.bearer_token_file, read once at start) authenticates with
	// "Authorization: Bearer". Not with basic auth. Default empty.
	BearerToken     Secret `mapstructure:"bearer_token"`
	BearerTokenFile string `mapstructure:"bearer_token_file"`

	// TLS applies to https:// URLs; its settings are an error while no
	// URL is https://, so that a connection believed verified is not
	// plaintext.
	TLS RegistryTLS `mapstructure:"tls"`

	// Timeout (registry.timeout) bounds one request. A request that fails
	// for want of the registry (refused, timed out, 5xx) is tried again
	// with backoff (see format.Schemas): at start until the start gives
	// up, mid-run until the registry is back. Default 10s.
	Timeout time.Duration `mapstructure:"timeout"`
}

// RegistryBasicAuth is the registry's basic auth.
type RegistryBasicAuth struct {
	// Username (registry.basic_auth.username). Default empty.
	Username string `mapstructure:"username"`
	// Password (registry.basic_auth.password, secret) or PasswordFile
	// (registry.basic_auth.password_file). One of them with Username.
	Password     Secret `mapstructure:"password"`
	PasswordFile string `mapstructure:"password_file"`
}

// RegistryTLS verifies the registry's certificate and presents a client
// certificate for mutual TLS. TLS 1.2 is the minimum version.
type RegistryTLS struct {
	// CAFile (registry.tls.ca_file): PEM CAs. Default: system roots.
	CAFile string `mapstructure:"ca_file"`
	// CertFile (registry.tls.cert_file) and KeyFile
	// (registry.tls.key_file): client certificate and key, both or
	// neither. Default: none.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// InsecureSkipVerify (registry.tls.insecure_skip_verify) accepts any
	// certificate; for tests only. Default false.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// Enabled reports whether a registry is configured.
func (r *Registry) Enabled() bool { return len(r.URLs) > 0 }

// problems checks the registry settings, reading the files they name but
// touching no network.
func (r *Registry) problems() []problem {
	var probs []problem
	add := func(key, format string, args ...any) {
		probs = append(probs, problem{key, fmt.Sprintf(format, args...)})
	}
	https := false
	for _, u := range r.URLs {
		p, err := url.Parse(u)
		switch {
		case err != nil || p.Host == "":
			add("registry.urls", "%q is not a URL: want http://host:port or https://host:port", u)
		case p.Scheme == "https":
			https = true
		case p.Scheme != "http":
			add("registry.urls", "%q: scheme %q, want http or https", u, p.Scheme)
		}
	}
	tlsSet := r.TLS.CAFile != "" || r.TLS.CertFile != "" || r.TLS.KeyFile != "" || r.TLS.InsecureSkipVerify
	if tlsSet && !https {
		add("registry.tls.ca_file", "registry TLS settings are set, but no registry.urls is https://: use https URLs, or remove the registry.tls settings")
	}
	if https {
		if _, ps := r.tlsConfig(); len(ps) > 0 {
			probs = append(probs, ps...)
		}
	}
	pass, err := secretValue(r.BasicAuth.Password, r.BasicAuth.PasswordFile)
	switch {
	case err != nil:
		add("registry.basic_auth.password_file", "%v", err)
	case r.BasicAuth.Username == "" && pass != "":
		add("registry.basic_auth.password", "set without registry.basic_auth.username: set both, or neither")
	case r.BasicAuth.Username != "" && pass == "":
		add("registry.basic_auth.username", "set without a password: set registry.basic_auth.password (or EXACTLY_REGISTRY_BASIC_AUTH_PASSWORD) or registry.basic_auth.password_file")
	}
	tok, err := secretValue(r.BearerToken, r.BearerTokenFile)
	switch {
	case err != nil:
		add("registry.bearer_token_file", "%v", err)
	case tok != "" && r.BasicAuth.Username != "":
		add("registry.bearer_token", "set with registry.basic_auth.username: the registry takes one kind of credentials; keep one")
	}
	if r.Timeout <= 0 && (r.Enabled() || r.Timeout < 0) {
		add("registry.timeout", "must be positive, got %s", r.Timeout)
	}
	return probs
}

func (r *Registry) tlsConfig() (*tls.Config, []problem) {
	var probs []problem
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.TLS.InsecureSkipVerify}
	if r.TLS.CAFile != "" {
		pool, err := certPool(r.TLS.CAFile)
		if err != nil {
			probs = append(probs, problem{"registry.tls.ca_file", err.Error() + ": point it at the PEM file of the CA certificates that sign the registry's certificate"})
		}
		cfg.RootCAs = pool
	}
	switch {
	case r.TLS.CertFile != "" && r.TLS.KeyFile == "":
		probs = append(probs, problem{"registry.tls.cert_file", "set without registry.tls.key_file: set both, or neither"})
	case r.TLS.CertFile == "" && r.TLS.KeyFile != "":
		probs = append(probs, problem{"registry.tls.key_file", "set without registry.tls.cert_file: set both, or neither"})
	case r.TLS.CertFile != "":
		cert, err := tls.LoadX509KeyPair(r.TLS.CertFile, r.TLS.KeyFile)
		if err != nil {
			probs = append(probs, problem{"registry.tls.cert_file", fmt.Sprintf("cannot load the client certificate %s with registry.tls.key_file %s: %v", r.TLS.CertFile, r.TLS.KeyFile, err)})
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// RegistryClient returns a Schema Registry client for the settings, or
// nil when registry.urls is empty. It touches no network. Warnings are
// for the log, once; none holds a secret.
func (s *Settings) RegistryClient() (*sr.Client, []string, error) {
	r := &s.Registry
	if !r.Enabled() {
		return nil, nil, nil
	}
	var warns []string
	tr := http.DefaultTransport.(*http.Transport).Clone()
	for _, u := range r.URLs {
		if strings.HasPrefix(u, "https://") {
			cfg, probs := r.tlsConfig()
			if len(probs) > 0 {
				return nil, nil, problemErrors(probs)
			}
			tr.TLSClientConfig = cfg
			break
		}
	}
	if r.TLS.InsecureSkipVerify {
		warns = append(warns, "registry.tls.insecure_skip_verify is set: any server can pose as the Schema Registry")
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	opts := []sr.ClientOpt{
		sr.URLs(r.URLs...),
		sr.HTTPClient(&http.Client{Transport: tr, Timeout: timeout}),
		sr.UserAgent("exactly"),
	}
	pass, err := secretValue(r.BasicAuth.Password, r.BasicAuth.PasswordFile)
	if err != nil {
		return nil, nil, problemErrors([]problem{{"registry.basic_auth.password_file", err.Error()}})
	}
	if r.BasicAuth.Username != "" {
		opts = append(opts, sr.BasicAuth(r.BasicAuth.Username, pass))
		if !strings.HasPrefix(r.URLs[0], "https://") {
			warns = append(warns, "registry basic auth over http://: the password crosses the network readable; use an https:// registry URL")
		}
	}
	tok, err := secretValue(r.BearerToken, r.BearerTokenFile)
	if err != nil {
		return nil, nil, problemErrors([]problem{{"registry.bearer_token_file", err.Error()}})
	}
	if tok != "" {
		opts = append(opts, sr.BearerToken(tok))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("registry.urls: %w", err)
	}
	return cl, warns, nil
}

func problemErrors(probs []problem) Errors {
	errs := make(Errors, len(probs))
	for i, p := range probs {
		errs[i] = &Error{Key: p.key, Msg: p.msg}
	}
	return errs
}
