package config

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"gopkg.in/yaml.v3"
)

// testPKI is a CA with a broker and a client certificate it signed, plus an
// unrelated CA, as PEM files in a temporary directory.
type testPKI struct {
	ca, otherCA           string
	serverCert, serverKey string
	clientCert, clientKey string
	caPool                *x509.CertPool
	garbage               string // a file that is not PEM
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{}
	var ca *x509.Certificate
	var caKey *ecdsa.PrivateKey
	p.ca, ca, caKey = newCA(t, dir, "ca")
	p.otherCA, _, _ = newCA(t, dir, "other-ca")
	p.caPool = x509.NewCertPool()
	p.caPool.AddCert(ca)
	p.serverCert, p.serverKey = issue(t, dir, "broker", ca, caKey, &x509.Certificate{
		DNSNames:    []string{"broker.exactly.test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.clientCert, p.clientKey = issue(t, dir, "client", ca, caKey, &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.garbage = filepath.Join(dir, "garbage.pem")
	writeFile(t, p.garbage, "this is not PEM\n")
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial int64

func newCA(t *testing.T, dir, name string) (string, *x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name+".pem")
	writeFile(t, file, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return file, cert, key
}

func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certFile, keyFile
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serverTLS is the brokers' listener config; mutual requires a client
// certificate signed by the CA.
func (p *testPKI) serverTLS(t *testing.T, mutual bool) *tls.Config {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.caPool
	}
	return cfg
}

// cluster starts a one-broker kfake with topic "t" and returns its
// address.
func cluster(t *testing.T, opts ...kfake.Opt) (string, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0], c
}

// settingsFile writes kv (dotted keys) as a YAML settings file and returns
// its name.
func settingsFile(t *testing.T, kv map[string]any) string {
	t.Helper()
	root := map[string]any{}
	for k, v := range kv {
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			if _, ok := m[p]; !ok {
				m[p] = map[string]any{}
			}
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = v
	}
	data, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "exactly.yaml")
	writeFile(t, file, string(data))
	return file
}

// load runs Load on kv as a settings file, plus args as flags.
func load(t *testing.T, kv map[string]any, args ...string) (*Settings, error) {
	t.Helper()
	return Load(flags(t, append([]string{"--settings", settingsFile(t, kv), "--instance-id=x"}, args...)...))
}

func mustLoad(t *testing.T, kv map[string]any, args ...string) *Settings {
	t.Helper()
	s, err := load(t, kv, args...)
	if err != nil {
		t.Fatalf("Load(%v) error:\n%v", kv, err)
	}
	return s
}

// client builds a client from the settings, the way the daemon must:
// KafkaOpts plus its own options.
func client(t *testing.T, s *Settings, extra ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts, _, err := s.KafkaOpts()
	if err != nil {
		t.Fatalf("KafkaOpts() error: %v", err)
	}
	opts = append(opts, kgo.SeedBrokers(s.Kafka.Brokers...), kgo.RetryTimeout(5*time.Second))
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient() error: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func ping(t *testing.T, cl *kgo.Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// roundTrip produces a record to "t" and consumes it back.
func roundTrip(t *testing.T, s *Settings) {
	t.Helper()
	cl := client(t, s, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	want := "hello " + t.Name()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte(want)}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consuming: %q not read back within 20s", want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("consuming: %v", e.Err)
		}
		for _, r := range fs.Records() {
			if string(r.Value) == want {
				return
			}
		}
	}
}

func TestKafkaTLS(t *testing.T) {
	p := newPKI(t)
	server, _ := cluster(t, kfake.TLS(p.serverTLS(t, false)))
	mutual, _ := cluster(t, kfake.TLS(p.serverTLS(t, true)))

	for _, tc := range []struct {
		name     string
		addr     string
		kv       map[string]any
		wantErr  string // in the ping error; empty: produce and consume work
		wantWarn string
	}{
		{name: "verified", addr: server, kv: map[string]any{"kafka.tls.ca_file": p.ca}},
		{name: "server name", addr: server, kv: map[string]any{"kafka.tls.ca_file": p.ca, "kafka.tls.server_name": "broker.exactly.test"}},
		{name: "wrong server name", addr: server, kv: map[string]any{"kafka.tls.ca_file": p.ca, "kafka.tls.server_name": "other.exactly.test"},
			wantErr: "certificate is valid for broker.exactly.test"},
		{name: "untrusted CA", addr: server, kv: map[string]any{"kafka.tls.ca_file": p.otherCA}, wantErr: "certificate signed by unknown authority"},
		{name: "system roots", addr: server, kv: map[string]any{}, wantErr: "certificate signed by unknown authority"},
		{name: "insecure", addr: server, kv: map[string]any{"kafka.tls.insecure_skip_verify": true}, wantWarn: "kafka.tls.insecure_skip_verify"},
		{name: "mutual", addr: mutual, kv: map[string]any{"kafka.tls.ca_file": p.ca, "kafka.tls.cert_file": p.clientCert, "kafka.tls.key_file": p.clientKey}},
		{name: "mutual without client certificate", addr: mutual, kv: map[string]any{"kafka.tls.ca_file": p.ca}, wantErr: "certificate required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]any{"kafka.brokers": []string{tc.addr}, "kafka.tls.enabled": true}
			for k, v := range tc.kv {
				kv[k] = v
			}
			s := mustLoad(t, kv)
			_, warnings, err := s.KafkaOpts()
			if err != nil {
				t.Fatalf("KafkaOpts() error: %v", err)
			}
			if got := strings.Join(warnings, "\n"); tc.wantWarn == "" && got != "" || !strings.Contains(got, tc.wantWarn) {
				t.Errorf("KafkaOpts() warnings = %q, want %q", got, tc.wantWarn)
			}
			if tc.wantErr == "" {
				roundTrip(t, s)
				return
			}
			err = ping(t, client(t, s))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Ping() = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}

	// Plaintext against a TLS listener: kgo says what is likely wrong.
	t.Run("plaintext client", func(t *testing.T) {
		s := mustLoad(t, map[string]any{"kafka.brokers": []string{server}})
		if err := ping(t, client(t, s)); err == nil || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("Ping() without TLS against a TLS listener = %v, want an error naming TLS", err)
		}
	})
}

func TestKafkaTLSFlags(t *testing.T) {
	p := newPKI(t)
	addr, _ := cluster(t, kfake.TLS(p.serverTLS(t, true)))
	s, err := Load(flags(t, "--instance-id=x", "--brokers", addr, "--kafka-tls", "--kafka-tls-ca-file", p.ca,
		"--kafka-tls-cert-file", p.clientCert, "--kafka-tls-key-file", p.clientKey))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	roundTrip(t, s)
}

// rejectPlain makes c answer a PLAIN authentication with a wrong password
// the way Apache Kafka does, with SASL_AUTHENTICATION_FAILED; kfake itself
// closes the connection instead.
func rejectPlain(c *kfake.Cluster, pass string) {
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		parts := bytes.SplitN(r.SASLAuthBytes, []byte{0}, 3)
		if len(parts) != 3 || string(parts[2]) == pass {
			// Not PLAIN (SCRAM messages hold no NUL), or the right
			// password: kfake handles it.
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
}

func TestKafkaSASL(t *testing.T) {
	p := newPKI(t)
	users := []kfake.Opt{
		kfake.EnableSASL(),
		kfake.Superuser(MechanismPlain, "user", "pass"),
		kfake.Superuser(MechanismScramSHA256, "user", "pass"),
		kfake.Superuser(MechanismScramSHA512, "user", "pass"),
	}
	plaintext, _ := cluster(t, users...)
	overTLS, tlsCluster := cluster(t, append(users, kfake.TLS(p.serverTLS(t, false)))...)
	rejectPlain(tlsCluster, "pass")
	withTLS := map[string]any{"kafka.tls.enabled": true, "kafka.tls.ca_file": p.ca}

	for _, tc := range []struct {
		name     string
		addr     string
		kv       map[string]any
		pass     string
		wantErr  func(error) bool
		wantWarn string
	}{
		{name: "SCRAM-SHA-256", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256}, pass: "pass"},
		{name: "SCRAM-SHA-512", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismScramSHA512}, pass: "pass"},
		{name: "SCRAM-SHA-512 over TLS", addr: overTLS, kv: map[string]any{"kafka.sasl.mechanism": MechanismScramSHA512}, pass: "pass"},
		{name: "PLAIN over TLS", addr: overTLS, kv: map[string]any{"kafka.sasl.mechanism": MechanismPlain}, pass: "pass"},
		{name: "PLAIN allowed without TLS", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismPlain, "kafka.sasl.allow_plain_without_tls": true},
			pass: "pass", wantWarn: "kafka.sasl.allow_plain_without_tls"},

		// A real broker answers SASL_AUTHENTICATION_FAILED, as
		// rejectPlain does; kfake closes the connection, which kgo
		// reports as EOF.
		{name: "PLAIN wrong password", addr: overTLS, kv: map[string]any{"kafka.sasl.mechanism": MechanismPlain}, pass: "wrong",
			wantErr: func(err error) bool {
				return errors.Is(err, kerr.SaslAuthenticationFailed) && strings.Contains(err.Error(), "Authentication failed")
			}},
		{name: "SCRAM-SHA-256 wrong password", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256}, pass: "wrong",
			wantErr: func(err error) bool { return errors.Is(err, io.EOF) }},
		{name: "SCRAM-SHA-512 wrong password", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismScramSHA512}, pass: "wrong",
			wantErr: func(err error) bool { return errors.Is(err, io.EOF) }},
		{name: "PLAIN wrong password without TLS", addr: plaintext, kv: map[string]any{"kafka.sasl.mechanism": MechanismPlain, "kafka.sasl.allow_plain_without_tls": true},
			pass: "wrong", wantErr: func(err error) bool { return errors.Is(err, io.EOF) }, wantWarn: "kafka.sasl.allow_plain_without_tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]any{"kafka.brokers": []string{tc.addr}, "kafka.sasl.username": "user", "kafka.sasl.password": tc.pass}
			if tc.addr == overTLS {
				for k, v := range withTLS {
					kv[k] = v
				}
			}
			for k, v := range tc.kv {
				kv[k] = v
			}
			s := mustLoad(t, kv)
			_, warnings, err := s.KafkaOpts()
			if err != nil {
				t.Fatalf("KafkaOpts() error: %v", err)
			}
			if got := strings.Join(warnings, "\n"); tc.wantWarn == "" && got != "" || !strings.Contains(got, tc.wantWarn) {
				t.Errorf("KafkaOpts() warnings = %q, want %q", got, tc.wantWarn)
			}
			if tc.wantErr == nil {
				roundTrip(t, s)
				return
			}
			if err := ping(t, client(t, s)); !tc.wantErr(err) {
				t.Errorf("Ping() with a wrong password = %v (%T), want an authentication failure", err, err)
			}
		})
	}

	t.Run("no SASL against a SASL broker", func(t *testing.T) {
		s := mustLoad(t, map[string]any{"kafka.brokers": []string{plaintext}})
		if err := ping(t, client(t, s)); err == nil || !strings.Contains(err.Error(), "SASL") {
			t.Errorf("Ping() without SASL = %v, want an error naming SASL", err)
		}
	})
}

func TestPlainWithoutTLS(t *testing.T) {
	kv := map[string]any{
		"kafka.brokers":        []string{"127.0.0.1:9092"},
		"kafka.sasl.mechanism": MechanismPlain,
		"kafka.sasl.username":  "user",
		"kafka.sasl.password":  "pass",
	}
	wants := []string{"kafka.sasl.mechanism", "kafka.tls.enabled", "kafka.sasl.allow_plain_without_tls", "clear text"}
	_, err := load(t, kv)
	for _, w := range wants {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Load(PLAIN without TLS) error = %v, want it to contain %q", err, w)
		}
	}

	// KafkaOpts refuses it as well, for Settings not from Load.
	s := &Settings{Kafka: Kafka{SASL: SASL{Mechanism: MechanismPlain, Username: "user", Password: "pass"}}}
	_, _, err = s.KafkaOpts()
	for _, w := range wants {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("KafkaOpts(PLAIN without TLS) error = %v, want it to contain %q", err, w)
		}
	}
	s.Kafka.SASL.AllowPlainWithoutTLS = true
	if opts, warnings, err := s.KafkaOpts(); err != nil || len(opts) != 2 || len(warnings) != 1 {
		t.Errorf("KafkaOpts(PLAIN allowed without TLS) = %d opts, %q, %v; want the linger and SASL opts and a warning", len(opts), warnings, err)
	}
}

// TestKafkaOptsErrors checks the errors of KafkaOpts on hand-built Settings
// name the setting and the fix.
func TestKafkaOptsErrors(t *testing.T) {
	p := newPKI(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	for _, tc := range []struct {
		name string
		set  func(*Settings)
		want []string
	}{
		{"unreadable CA", func(s *Settings) {
			s.Kafka.TLS = KafkaTLS{Enabled: true, CAFile: filepath.Join(t.TempDir(), "nope.pem")}
		},
			[]string{"kafka.tls.ca_file: cannot read", "no such file", "point it at the PEM file"}},
		{"CA not PEM", func(s *Settings) { s.Kafka.TLS = KafkaTLS{Enabled: true, CAFile: p.garbage} },
			[]string{"kafka.tls.ca_file: " + p.garbage + " holds no PEM certificate"}},
		{"CA file is a key", func(s *Settings) { s.Kafka.TLS = KafkaTLS{Enabled: true, CAFile: p.clientKey} },
			[]string{"kafka.tls.ca_file:", "holds no PEM certificate"}},
		{"cert without key", func(s *Settings) { s.Kafka.TLS = KafkaTLS{Enabled: true, CertFile: p.clientCert} },
			[]string{"kafka.tls.cert_file: set without kafka.tls.key_file"}},
		{"key without cert", func(s *Settings) { s.Kafka.TLS = KafkaTLS{Enabled: true, KeyFile: p.clientKey} },
			[]string{"kafka.tls.key_file: set without kafka.tls.cert_file"}},
		{"mismatched key", func(s *Settings) { s.Kafka.TLS = KafkaTLS{Enabled: true, CertFile: p.clientCert, KeyFile: p.serverKey} },
			[]string{"kafka.tls.cert_file: cannot load the client certificate", "private key does not match"}},
		{"TLS settings with TLS off", func(s *Settings) { s.Kafka.TLS = KafkaTLS{CAFile: p.ca} },
			[]string{"kafka.tls.ca_file: set, but kafka.tls.enabled is false"}},
		{"mechanism case", func(s *Settings) { s.Kafka.SASL.Mechanism = "scram-sha-512" },
			[]string{`kafka.sasl.mechanism: unknown mechanism "scram-sha-512"; did you mean "SCRAM-SHA-512"?`}},
		{"mechanism typo", func(s *Settings) { s.Kafka.SASL.Mechanism = "SCRAM-SHA256" },
			[]string{`did you mean "SCRAM-SHA-256"?`}},
		{"GSSAPI", func(s *Settings) { s.Kafka.SASL.Mechanism = "GSSAPI" },
			[]string{"GSSAPI (Kerberos) is not supported; want PLAIN, SCRAM-SHA-256"}},
		{"SCRAM without user", func(s *Settings) { s.Kafka.SASL = SASL{Mechanism: MechanismScramSHA256, Password: "x"} },
			[]string{"kafka.sasl.username: required by kafka.sasl.mechanism SCRAM-SHA-256"}},
		{"SCRAM without password", func(s *Settings) { s.Kafka.SASL = SASL{Mechanism: MechanismScramSHA256, Username: "u"} },
			[]string{"kafka.sasl.password: required", "kafka.sasl.password_file"}},
		{"unreadable password file", func(s *Settings) {
			s.Kafka.SASL = SASL{Mechanism: MechanismScramSHA256, Username: "u", PasswordFile: filepath.Join(t.TempDir(), "nope")}
		}, []string{"kafka.sasl.password_file: open", "no such file"}},
		{"credentials without mechanism", func(s *Settings) { s.Kafka.SASL = SASL{Username: "u"} },
			[]string{"kafka.sasl.username: set, but kafka.sasl.mechanism is empty"}},
		{"credentials of another mechanism", func(s *Settings) {
			s.Kafka.SASL = SASL{Mechanism: MechanismOAuthBearer, Username: "u", OAuth: OAuth{TokenFile: p.garbage}}
		}, []string{"kafka.sasl.username: set, but kafka.sasl.mechanism OAUTHBEARER does not use it"}},
		{"OAUTHBEARER without token file", func(s *Settings) { s.Kafka.SASL.Mechanism = MechanismOAuthBearer },
			[]string{"kafka.sasl.oauth.token_file: required by kafka.sasl.mechanism OAUTHBEARER"}},
		{"OAUTHBEARER unreadable token file", func(s *Settings) {
			s.Kafka.SASL = SASL{Mechanism: MechanismOAuthBearer, OAuth: OAuth{TokenFile: filepath.Join(t.TempDir(), "token")}}
		}, []string{"kafka.sasl.oauth.token_file: cannot read the OAUTHBEARER token", "no such file"}},
		{"AWS without keys", func(s *Settings) { s.Kafka.SASL.Mechanism = MechanismAWSMSKIAM },
			[]string{"kafka.sasl.aws.access_key: AWS_MSK_IAM needs keys", "AWS_ACCESS_KEY_ID"}},
		{"AWS access key alone", func(s *Settings) { s.Kafka.SASL = SASL{Mechanism: MechanismAWSMSKIAM, AWS: AWS{AccessKey: "AKID"}} },
			[]string{"kafka.sasl.aws.access_key: set without kafka.sasl.aws.secret_key"}},
		{"AWS secret alone", func(s *Settings) { s.Kafka.SASL = SASL{Mechanism: MechanismAWSMSKIAM, AWS: AWS{SecretKey: "x"}} },
			[]string{"kafka.sasl.aws.secret_key: set without kafka.sasl.aws.access_key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Settings{Kafka: Kafka{Brokers: []string{"127.0.0.1:9092"}}}
			tc.set(s)
			opts, _, err := s.KafkaOpts()
			if err == nil {
				t.Fatalf("KafkaOpts() = %d opts, nil error; want an error", len(opts))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("KafkaOpts() error =\n%v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestSecurityLoadErrors checks that Load reports every security problem
// at once, each with where its value came from.
func TestSecurityLoadErrors(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	writeFile(t, passFile, "from-file\n")
	file := filepath.Join(dir, "exactly.yaml")
	writeFile(t, file, `kafka:
  brokers: [127.0.0.1:9092]
  tls:
    ca_file: /etc/ca.pem
  sasl:
    mechanism: SCRAM-SHA-256
    username: user
    password_file: `+passFile+`
http:
  tls:
    cert_file: /etc/metrics.crt
  basic_auth:
    username: "a:b"
    password: x
`)
	t.Setenv("EXACTLY_KAFKA_SASL_PASSWORD", "from-env")
	_, err := Load(flags(t, "--settings", file, "--instance-id=x", "--kafka-tls-insecure-skip-verify"))
	if err == nil {
		t.Fatal("Load() error = nil, want errors")
	}
	for _, w := range []string{
		file + `:4:14: kafka.tls.ca_file: set, but kafka.tls.enabled is false`,
		`flag --kafka-tls-insecure-skip-verify: kafka.tls.insecure_skip_verify: set, but kafka.tls.enabled is false`,
		`env EXACTLY_KAFKA_SASL_PASSWORD: kafka.sasl.password: set both as a value and as kafka.sasl.password_file (` + file + `:8:20): set one of them`,
		file + `:11:16: http.tls.cert_file: set without http.tls.key_file`,
		file + `:13:15: http.basic_auth.username: "a:b" holds ':'`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Load() error =\n%v\nwant a line containing %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "from-env") || strings.Contains(err.Error(), "from-file") {
		t.Errorf("Load() error =\n%v\nshows a secret", err)
	}

	// One line per problem: an unreadable password file is reported once.
	_, err = load(t, map[string]any{"kafka.brokers": []string{"127.0.0.1:9092"}, "kafka.sasl.mechanism": MechanismScramSHA512,
		"kafka.sasl.username": "u", "kafka.sasl.password_file": filepath.Join(dir, "nope")})
	if err == nil || strings.Count(err.Error(), "password_file") != 1 || strings.Count(err.Error(), "\n") != 0 {
		t.Errorf("Load() with an unreadable password file = %v, want one error", err)
	}

	// Embedded brokers serve neither TLS nor SASL.
	_, err = load(t, map[string]any{"kafka.tls.enabled": true, "kafka.sasl.mechanism": MechanismScramSHA512, "kafka.sasl.username": "u", "kafka.sasl.password": "p"})
	for _, w := range []string{"kafka.tls.enabled: the embedded broker serves plaintext only", "kafka.sasl.mechanism: the embedded broker has no SASL"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Load(TLS and SASL with embedded) = %v, want %q", err, w)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ name, data string }{
		{"pass", "p4ss\r\n"}, {"secret", "sk\n\n"}, {"token", "st"}, {"http", "hp\n"}, {"empty", "\n"},
	} {
		writeFile(t, filepath.Join(dir, f.name), f.data)
	}
	s := mustLoad(t, map[string]any{
		"kafka.brokers":                     []string{"127.0.0.1:9092"},
		"kafka.sasl.mechanism":              MechanismScramSHA256,
		"kafka.sasl.username":               "u",
		"kafka.sasl.password_file":          filepath.Join(dir, "pass"),
		"http.basic_auth.username":          "prom",
		"http.basic_auth.password_file":     filepath.Join(dir, "http"),
		"http.tls.cert_file":                "",
		"kafka.sasl.aws.session_token_file": "",
	})
	if got := s.Kafka.SASL.Password.Value(); got != "p4ss" {
		t.Errorf("kafka.sasl.password from its file = %q, want %q (trailing newline dropped)", got, "p4ss")
	}
	if got := s.HTTP.BasicAuth.Password.Value(); got != "hp" {
		t.Errorf("http.basic_auth.password from its file = %q, want %q", got, "hp")
	}
	if w := strings.Join(s.Warnings(), "\n"); !strings.Contains(w, "http.basic_auth is set without http.tls.cert_file") {
		t.Errorf("Warnings() = %q, want the basic auth without TLS warning", w)
	}

	s = mustLoad(t, map[string]any{
		"kafka.brokers":                     []string{"127.0.0.1:9092"},
		"kafka.sasl.mechanism":              MechanismAWSMSKIAM,
		"kafka.sasl.aws.access_key":         "AKID",
		"kafka.sasl.aws.secret_key_file":    filepath.Join(dir, "secret"),
		"kafka.sasl.aws.session_token_file": filepath.Join(dir, "token"),
	})
	if s.Kafka.SASL.AWS.SecretKey.Value() != "sk" || s.Kafka.SASL.AWS.SessionToken.Value() != "st" {
		t.Errorf("aws secret_key, session_token from files = %q, %q; want sk, st", s.Kafka.SASL.AWS.SecretKey.Value(), s.Kafka.SASL.AWS.SessionToken.Value())
	}

	_, err := load(t, map[string]any{"kafka.brokers": []string{"127.0.0.1:9092"}, "kafka.sasl.mechanism": MechanismScramSHA256,
		"kafka.sasl.username": "u", "kafka.sasl.password_file": filepath.Join(dir, "empty")})
	if err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file: "+filepath.Join(dir, "empty")+" is empty") {
		t.Errorf("Load() with an empty password file = %v, want it named empty", err)
	}
}

// TestOAuthTokenFile checks the OAUTHBEARER callback reads the token file
// again once it changed.
func TestOAuthTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, "tok-1\n")
	s := &Settings{Kafka: Kafka{TLS: KafkaTLS{Enabled: true}, SASL: SASL{Mechanism: MechanismOAuthBearer, OAuth: OAuth{TokenFile: file}}}}
	mech, probs := s.Kafka.mechanism()
	if len(probs) > 0 {
		t.Fatalf("mechanism() problems: %v", probs)
	}
	token := func() (string, error) {
		_, first, err := mech.Authenticate(t.Context(), "127.0.0.1:9092")
		if err != nil {
			return "", err
		}
		_, tok, _ := strings.Cut(string(first), "auth=Bearer ")
		tok, _, _ = strings.Cut(tok, "\x01")
		return tok, nil
	}
	for i, step := range []struct {
		write   string // new contents; "" leaves the file as is, "-" removes it
		want    string
		wantErr string
	}{
		{"", "tok-1", ""},
		{"", "tok-1", ""},
		{"tok-2\n", "tok-2", ""},
		{"tok-3-longer", "tok-3-longer", ""},
		{"-", "", "cannot read the OAUTHBEARER token"},
		{"tok-4", "tok-4", ""},
	} {
		switch step.write {
		case "":
		case "-":
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		default:
			writeFile(t, file, step.write)
			// A distinct modification time, as a refresher replacing the
			// file a while later gives.
			when := time.Now().Add(time.Duration(i) * time.Minute)
			if err := os.Chtimes(file, when, when); err != nil {
				t.Fatal(err)
			}
		}
		got, err := token()
		if step.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), step.wantErr) || !strings.Contains(err.Error(), file) {
				t.Errorf("step %d: token() = %q, %v; want an error naming the file", i, got, err)
			}
			continue
		}
		if err != nil || got != step.want {
			t.Errorf("step %d: token() = %q, %v; want %q", i, got, err, step.want)
		}
	}
}

// oauthBroker makes c accept OAUTHBEARER (kfake has no OAUTHBEARER) with
// the token valid returns, and records the tokens presented.
func oauthBroker(c *kfake.Cluster, valid func() string) func() []string {
	var mu sync.Mutex
	var seen []string
	c.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLHandshakeRequest)
		resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{MechanismOAuthBearer}
		if r.Mechanism != MechanismOAuthBearer {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.SASLAuthenticateRequest)
		_, tok, _ := strings.Cut(string(r.SASLAuthBytes), "auth=Bearer ")
		tok, _, _ = strings.Cut(tok, "\x01")
		mu.Lock()
		seen = append(seen, tok)
		mu.Unlock()
		resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		if tok != valid() {
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		}
		return resp, nil, true
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestOAuthBroker connects twice with the same options through a broker
// that accepts only the current token, rotating the token file between
// the connections.
func TestOAuthBroker(t *testing.T) {
	p := newPKI(t)
	addr, c := cluster(t, kfake.TLS(p.serverTLS(t, false)))
	var mu sync.Mutex
	current := "tok-1"
	seen := oauthBroker(c, func() string { mu.Lock(); defer mu.Unlock(); return current })

	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, "tok-1\n")
	s := mustLoad(t, map[string]any{"kafka.brokers": []string{addr}, "kafka.tls.enabled": true, "kafka.tls.ca_file": p.ca,
		"kafka.sasl.mechanism": MechanismOAuthBearer, "kafka.sasl.oauth.token_file": file})
	opts, _, err := s.KafkaOpts()
	if err != nil {
		t.Fatalf("KafkaOpts() error: %v", err)
	}
	connect := func() error {
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(addr))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return ping(t, cl)
	}
	if err := connect(); err != nil {
		t.Fatalf("first connection with tok-1: %v", err)
	}

	mu.Lock()
	current = "tok-2"
	mu.Unlock()
	writeFile(t, file, "tok-2\n")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if err := connect(); err != nil {
		t.Fatalf("second connection after rotating to tok-2: %v (tokens presented: %q)", err, seen())
	}
	if got := seen(); len(got) < 2 || got[0] != "tok-1" || got[len(got)-1] != "tok-2" {
		t.Errorf("tokens presented = %q, want tok-1 first and tok-2 last", got)
	}

	// A stale token is refused by the broker with an error naming
	// authentication.
	mu.Lock()
	current = "tok-3"
	mu.Unlock()
	if err := connect(); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("connection with a stale token = %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

func TestAWSCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "env-token")
	for _, tc := range []struct {
		name    string
		aws     AWS
		wantKey string
		hidden  string
	}{
		{"settings", AWS{AccessKey: "AKIDSET", SecretKey: "set-secret"}, "AKIDSET", "set-secret"},
		{"environment", AWS{}, "AKIDENV", "env-secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Settings{Kafka: Kafka{TLS: KafkaTLS{Enabled: true}, SASL: SASL{Mechanism: MechanismAWSMSKIAM, AWS: tc.aws}}}
			mech, probs := s.Kafka.mechanism()
			if len(probs) > 0 {
				t.Fatalf("mechanism() problems: %v", probs)
			}
			if mech.Name() != MechanismAWSMSKIAM {
				t.Errorf("mechanism = %s, want %s", mech.Name(), MechanismAWSMSKIAM)
			}
			_, first, err := mech.Authenticate(t.Context(), "b-1.example.kafka.us-east-1.amazonaws.com:9098")
			if err != nil {
				t.Fatalf("Authenticate() error: %v", err)
			}
			if !strings.Contains(string(first), tc.wantKey+"/") || strings.Contains(string(first), tc.hidden) {
				t.Errorf("Authenticate() payload %s: want it signed with %s and without the secret key", first, tc.wantKey)
			}
			// Static keys from the settings never pick up the
			// environment's session token.
			if tc.name == "settings" && strings.Contains(string(first), "env-token") {
				t.Errorf("Authenticate() payload %s holds the environment's session token", first)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	writeFile(t, passFile, "hunter2\n")
	s := mustLoad(t, map[string]any{
		"kafka.brokers":            []string{"127.0.0.1:9092"},
		"kafka.sasl.mechanism":     MechanismScramSHA512,
		"kafka.sasl.username":      "user",
		"kafka.sasl.password_file": passFile,
	})
	r := s.Redacted()
	for key := range defaults() {
		if _, ok := r[key]; !ok {
			t.Errorf("Redacted() has no %s", key)
		}
	}
	if len(r) != len(defaults()) {
		t.Errorf("Redacted() has %d keys, want the %d settings", len(r), len(defaults()))
	}
	for key, want := range map[string]any{
		"kafka.sasl.password":          "[redacted]",
		"kafka.sasl.password_file":     passFile,
		"kafka.sasl.username":          "user",
		"kafka.sasl.aws.secret_key":    "",
		"kafka.sasl.aws.session_token": "",
		"http.basic_auth.password":     "",
		"kafka.transaction_timeout":    10 * time.Second,
	} {
		if r[key] != want {
			t.Errorf("Redacted()[%s] = %#v, want %#v", key, r[key], want)
		}
	}
}

func TestNoSecretFlags(t *testing.T) {
	for name, key := range flagKeys {
		if secretKeys[key] {
			t.Errorf("flag --%s sets the secret %s: command lines are readable by every user of the host", name, key)
		}
	}
	for key := range secretKeys {
		if _, ok := defaults()[key]; !ok {
			t.Errorf("secret %s is not a setting", key)
		}
	}
}
