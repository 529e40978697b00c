package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const canary = "canary-S3cr3t"

// syncBuffer collects kgo's log lines from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCanary puts one secret value into every secret setting, from a
// value, the environment and a file in turn, triggers every error path
// and checks the value shows up nowhere: not in errors, not in Redacted,
// not when the Settings are printed or logged, not in kgo's debug log.
func TestCanary(t *testing.T) {
	addr, _ := cluster(t, kfake.EnableSASL(),
		kfake.Superuser(MechanismScramSHA256, "user", "right"),
		kfake.Superuser(MechanismScramSHA512, "user", "right"),
		kfake.Superuser(MechanismPlain, "user", "right"))
	dir := t.TempDir()
	canaryFile := filepath.Join(dir, "canary")
	writeFile(t, canaryFile, canary+"\n")

	// secret gives kv the canary as key's value by one of the three
	// routes.
	type route func(t *testing.T, kv map[string]any, key string)
	routes := map[string]route{
		"value": func(t *testing.T, kv map[string]any, key string) { kv[key] = canary },
		"env": func(t *testing.T, kv map[string]any, key string) {
			t.Setenv("EXACTLY_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_")), canary)
		},
		"file": func(t *testing.T, kv map[string]any, key string) { kv[key+"_file"] = canaryFile },
	}
	base := func() map[string]any {
		return map[string]any{"kafka.brokers": []string{addr}, "kafka.sasl.username": "user"}
	}
	var seen []string // every string that must not hold the canary
	check := func(t *testing.T, what string, s string) {
		t.Helper()
		seen = append(seen, s)
		if strings.Contains(s, canary) {
			t.Errorf("%s shows the secret:\n%s", what, s)
		}
	}

	for name, give := range routes {
		t.Run(name, func(t *testing.T) {
			// Bad settings around a secret: each must fail Load, and
			// its error must not quote the secret.
			for _, bad := range []struct {
				name string
				kv   map[string]any
			}{
				{"bad mechanism", map[string]any{"kafka.sasl.mechanism": "SCRAM-SHA-257"}},
				{"no mechanism", map[string]any{}},
				{"bad CA file", map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256, "kafka.tls.enabled": true, "kafka.tls.ca_file": filepath.Join(dir, "nope.pem")}},
				{"CA not PEM", map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256, "kafka.tls.enabled": true, "kafka.tls.ca_file": canaryFile}},
				{"PLAIN without TLS", map[string]any{"kafka.sasl.mechanism": MechanismPlain}},
				{"value and file", map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256, "kafka.sasl.password": canary, "kafka.sasl.password_file": canaryFile}},
				{"no user", map[string]any{"kafka.sasl.mechanism": MechanismScramSHA256, "kafka.sasl.username": ""}},
				{"other mechanism", map[string]any{"kafka.sasl.mechanism": MechanismAWSMSKIAM}},
				{"bad duration too", map[string]any{"kafka.sasl.mechanism": "scram", "kafka.session_timeout": "soon"}},
			} {
				t.Run(bad.name, func(t *testing.T) {
					kv := base()
					give(t, kv, "kafka.sasl.password")
					for k, v := range bad.kv {
						kv[k] = v
					}
					_, err := load(t, kv)
					if err == nil {
						t.Fatalf("Load(%v) error = nil, want one", bad.name)
					}
					check(t, "Load() error", err.Error())
				})
			}

			// The other secrets, with their own errors.
			for _, key := range []string{"kafka.sasl.aws.secret_key", "kafka.sasl.aws.session_token", "http.basic_auth.password"} {
				t.Run(key, func(t *testing.T) {
					kv := base()
					kv["kafka.sasl.mechanism"] = MechanismScramSHA256 // does not use the AWS keys
					kv["kafka.sasl.password"] = "right"
					give(t, kv, key)
					if key == "http.basic_auth.password" {
						kv["http.basic_auth.username"] = "a:b"
					}
					_, err := load(t, kv)
					if err == nil {
						t.Fatalf("Load() with a misused %s = nil, want an error", key)
					}
					check(t, "Load() error", err.Error())
				})
			}

			// Good settings: printed, logged, redacted, then a wrong
			// password against the broker.
			kv := base()
			kv["kafka.sasl.mechanism"] = MechanismScramSHA256
			give(t, kv, "kafka.sasl.password")
			s := mustLoad(t, kv)
			if s.Kafka.SASL.Password.Value() != canary {
				t.Fatalf("kafka.sasl.password = %q, want the canary", s.Kafka.SASL.Password.Value())
			}
			check(t, "Redacted()", fmt.Sprint(s.Redacted()))
			check(t, "%v", fmt.Sprintf("%v", s))
			check(t, "%+v", fmt.Sprintf("%+v", *s))
			check(t, "%#v", fmt.Sprintf("%#v", *s))
			check(t, "%s", fmt.Sprintf("%s %q", s.Kafka.SASL.Password, s.Kafka.SASL.Password))
			js, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			check(t, "json", string(js))
			var logged bytes.Buffer
			slog.New(slog.NewJSONHandler(&logged, nil)).Info("settings", "settings", s, "sasl", s.Kafka.SASL, "password", s.Kafka.SASL.Password)
			check(t, "slog", logged.String())
			if r := s.Redacted(); r["kafka.sasl.password"] != "[redacted]" {
				t.Errorf("Redacted()[kafka.sasl.password] = %q, want [redacted]", r["kafka.sasl.password"])
			}

			var kgoLog syncBuffer
			cl := client(t, s, kgo.WithLogger(kgo.BasicLogger(&kgoLog, kgo.LogLevelDebug, nil)))
			err = ping(t, cl)
			if err == nil {
				t.Fatal("Ping() with the canary as password = nil, want an authentication failure")
			}
			check(t, "Ping() error", err.Error())
			cl.Close()
			if !strings.Contains(kgoLog.String(), "SASLAuthenticate") {
				t.Errorf("kgo debug log does not show the authentication; is the logger wired?\n%s", kgoLog.String())
			}
			check(t, "kgo log", kgoLog.String())
		})
	}

	// A secret that is not a string: the decoder's message would quote it.
	for _, v := range []any{map[string]any{canary: 1}, []string{canary}} {
		kv := base()
		kv["kafka.sasl.mechanism"] = MechanismScramSHA256
		kv["kafka.sasl.password"] = v
		_, err := load(t, kv)
		if err == nil || !strings.Contains(err.Error(), "kafka.sasl.password: want a string (the value is secret and not shown)") {
			t.Errorf("Load(password: %v) = %v, want a decode error hiding the value", v, err)
		}
		if err != nil {
			check(t, "Load() decode error", err.Error())
		}
	}

	// Broken YAML around the secret.
	file := filepath.Join(dir, "broken.yaml")
	writeFile(t, file, "kafka:\n  sasl:\n    password: \""+canary+"\n  brokers: [a:1\n")
	if _, err := Load(flags(t, "--settings", file, "--instance-id=x")); err == nil {
		t.Error("Load(broken YAML) = nil, want an error")
	} else {
		check(t, "Load() YAML error", err.Error())
	}
	writeFile(t, file, "kafka:\n  sasl:\n    password: "+canary+"\n\tusername: x\n")
	if _, err := Load(flags(t, "--settings", file, "--instance-id=x")); err == nil {
		t.Error("Load(YAML with a tab) = nil, want an error")
	} else {
		check(t, "Load() YAML error", err.Error())
	}

	// KafkaOpts on hand-built Settings.
	for _, s := range []*Settings{
		{Kafka: Kafka{SASL: SASL{Mechanism: "SCRAM", Username: "u", Password: canary}}},
		{Kafka: Kafka{SASL: SASL{Mechanism: MechanismPlain, Username: "u", Password: canary}}},
		{Kafka: Kafka{SASL: SASL{Mechanism: MechanismAWSMSKIAM, AWS: AWS{SecretKey: canary, SessionToken: canary}}}},
		{Kafka: Kafka{TLS: KafkaTLS{Enabled: true, CAFile: canaryFile}, SASL: SASL{Mechanism: MechanismScramSHA256, Username: "u", Password: canary}}},
		{Kafka: Kafka{SASL: SASL{Password: canary}}},
	} {
		_, _, err := s.KafkaOpts()
		if err == nil {
			t.Errorf("KafkaOpts(%v) = nil error, want one", s.Redacted())
			continue
		}
		check(t, "KafkaOpts() error", err.Error())
	}

	if len(seen) < 40 {
		t.Errorf("checked %d strings, want every path above", len(seen))
	}
	if testing.Verbose() {
		// For review: what users see instead of the secret.
		t.Logf("sample:\n%s", strings.Join(seen[:min(len(seen), 12)], "\n---\n"))
	}
	_ = os.Remove(canaryFile)
}
