package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var kafkaOnly = Scope{"kafka.brokers", "kafka.sasl.", "instance_id", "log."}

// A Scope offers the flags of its settings only, plus --settings.
func TestScopeFlags(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	kafkaOnly.AddFlags(fs)
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, want := range []string{"--settings", "--brokers", "--sasl-mechanism", "--instance-id", "--log-level"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help of %v lacks %s:\n%s", kafkaOnly, want, help.String())
		}
	}
	for _, unused := range []string{"--http-addr", "--http-basic-auth", "--state-dir", "--commit-interval", "--embedded", "--kafka-tls", "--client-id"} {
		if strings.Contains(help.String(), unused) {
			t.Errorf("help of %v offers %s, which is out of scope:\n%s", kafkaOnly, unused, help.String())
		}
	}
}

// Settings out of scope are neither decoded nor checked, wherever they
// come from; the settings in scope are, and a key no command knows is
// still an error.
func TestScopeLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exactly.yaml")
	os.WriteFile(file, []byte("kafka:\n  brokers: [a:1]\nhttp:\n  addr: nonsense\nstate:\n  cache_bytes: 1\n"), 0o644)
	t.Setenv("EXACTLY_HTTP_BASIC_AUTH_PASSWORD", "for-the-metrics-server")
	t.Setenv("EXACTLY_COMMIT_INTERVAL", "soon")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	kafkaOnly.AddFlags(fs)
	if err := fs.Parse([]string{"--settings", file, "--instance-id=x"}); err != nil {
		t.Fatal(err)
	}
	s, err := kafkaOnly.Load(fs)
	if err != nil {
		t.Fatalf("Load() with unused settings set = %v, want no error", err)
	}
	if s.Kafka.Brokers[0] != "a:1" || s.InstanceID != "x" || s.Log.Level != "info" || s.HTTP.BasicAuth.Password != "" {
		t.Errorf("Load() = %+v, want the settings in scope and nothing else", s)
	}
	// Without a scope, the same settings are errors.
	if _, err := Load(flags(t, "--settings", file, "--instance-id=x")); err == nil || !strings.Contains(err.Error(), "http.basic_auth.password") {
		t.Errorf("Load() = %v, want the unscoped load to report http.basic_auth.password", err)
	}

	os.WriteFile(file, []byte("kafka:\n  brokers: [a]\nhttp:\n  adr: x\n"), 0o644)
	_, err = kafkaOnly.Load(fs)
	if err == nil || !strings.Contains(err.Error(), "kafka.brokers") || !strings.Contains(err.Error(), "http.adr: unknown setting") {
		t.Errorf("Load() = %v, want the bad broker and the unknown key reported", err)
	}
}
