package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaults(t *testing.T) {
	s, err := Load(flags(t, "--instance-id=a"))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if s.CommitInterval != 100*time.Millisecond || s.Kafka.Brokers[0] != Embedded || s.Kafka.TransactionTimeout != 10*time.Second || s.Log.Level != "info" || s.Kafka.Linger != 5*time.Millisecond {
		t.Errorf("Load() = %+v, want the documented defaults", s)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exactly.yaml")
	os.WriteFile(file, []byte("kafka:\n  brokers: [a:1, b:2]\n  client_id: from-file\ncommit_interval: 250ms\nlog:\n  level: debug\n"), 0o644)
	t.Setenv("EXACTLY_KAFKA_CLIENT_ID", "from-env")
	t.Setenv("EXACTLY_LOG_LEVEL", "warn")
	s, err := Load(flags(t, "--settings", file, "--log-level=error", "--instance-id=x"))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if got := strings.Join(s.Kafka.Brokers, ","); got != "a:1,b:2" {
		t.Errorf("brokers = %s, want a:1,b:2 from the file", got)
	}
	if s.Kafka.ClientID != "from-env" {
		t.Errorf("client_id = %s, want from-env (env beats file)", s.Kafka.ClientID)
	}
	if s.Log.Level != "error" {
		t.Errorf("log.level = %s, want error (flag beats env)", s.Log.Level)
	}
	if s.CommitInterval != 250*time.Millisecond {
		t.Errorf("commit_interval = %s, want 250ms", s.CommitInterval)
	}
}

func TestEnvBrokerList(t *testing.T) {
	t.Setenv("EXACTLY_KAFKA_BROKERS", "h1:9092,h2:9092")
	s, err := Load(flags(t, "--instance-id=x"))
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	if got := strings.Join(s.Kafka.Brokers, "|"); got != "h1:9092|h2:9092" {
		t.Errorf("brokers = %s, want h1:9092|h2:9092", got)
	}
}

// TestErrors checks that every problem is reported at once, each naming
// where its value came from.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "exactly.yaml")
	os.WriteFile(file, []byte("kafka:\n  brokers: [nohost]\n  sesion_timeout: 5s\n  transaction_timeout: 50s\ncommit_interval: -1s\nlog:\n  format: xml\n"), 0o644)
	t.Setenv("EXACTLY_LOG_LEVEL", "loud")
	_, err := Load(flags(t, "--settings", file, "--instance-id=bad id"))
	if err == nil {
		t.Fatal("Load() error = nil, want errors")
	}
	want := []string{
		file + `:3:3: kafka.sesion_timeout: unknown setting; did you mean "kafka.session_timeout"?`,
		file + `:2:12: kafka.brokers: "nohost" is not host:port`,
		file + `:4:24: kafka.transaction_timeout: 50s must be below kafka.session_timeout (45s)`,
		file + `:5:18: commit_interval: must be positive, got -1s`,
		file + `:7:11: log.format: unknown format "xml" (want text or json)`,
		`env EXACTLY_LOG_LEVEL: log.level: unknown level "loud"`,
		`flag --instance-id: instance_id: "bad id" may only hold`,
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Load() error =\n%v\nwant a line containing %q", err, w)
		}
	}
}

func TestLinger(t *testing.T) {
	s, err := Load(flags(t, "--instance-id=a", "--linger=0s"))
	if err != nil || s.Kafka.Linger != 0 {
		t.Fatalf("Load(--linger=0s) = %v, %v; want 0", s.Kafka.Linger, err)
	}
	_, err = Load(flags(t, "--instance-id=a", "--linger=2s"))
	if err == nil || !strings.Contains(err.Error(), "kafka.linger: must be between 0 and 1s, got 2s") {
		t.Fatalf("Load(--linger=2s) error = %v, want one naming kafka.linger", err)
	}
}

// The deploy example turns static membership on through the environment.
func TestStaticMembershipEnv(t *testing.T) {
	t.Setenv("EXACTLY_KAFKA_STATIC_MEMBERSHIP", "true")
	s, err := Load(flags(t, "--instance-id=a"))
	if err != nil || !s.Kafka.StaticMembership {
		t.Fatalf("Load() with EXACTLY_KAFKA_STATIC_MEMBERSHIP=true = %v, %v; want static membership on", s.Kafka.StaticMembership, err)
	}
}

// TestFileProblems checks that a problem in the settings file is one line
// naming the file, line, column and key, without follow-on errors.
func TestFileProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // after "file:"
	}{
		{"syntax error", "kafka:\n  brokers: [embedded]\n  linger: [\n",
			"4:1: kafka.linger: did not find expected node content"},
		{"tab", "kafka:\n\tclient_id: x\n",
			"2:1: kafka.client_id: tabs are not allowed for indentation; indent with spaces"},
		{"tab, no known key", "log:\n  level: info\n\tlevl: debug\n",
			"3:1: tabs are not allowed for indentation; indent with spaces"},
		{"bad duration", "kafka:\n  session_timeout: 30x\n",
			`2:20: kafka.session_timeout: invalid duration "30x": want a number and a unit (ms, s, m or h), such as 30s or 5m`},
		{"bad duration compared with another", "kafka:\n  transaction_timeout: soon\n",
			`2:24: kafka.transaction_timeout: invalid duration "soon": want a number and a unit (ms, s, m or h), such as 30s or 5m`},
		{"bad number", "embedded:\n  partitions: many\n",
			`2:15: embedded.partitions: invalid number "many": want a whole number`},
		{"bad boolean", "kafka:\n  static_membership: maybe\n",
			`2:22: kafka.static_membership: invalid value "maybe": want true or false`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "set.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(flags(t, "--settings", file, "--instance-id=a"))
			if want := file + ":" + tc.want; err == nil || err.Error() != want {
				t.Errorf("Load(%q) error =\n%v\nwant\n%s", tc.yaml, err, want)
			}
		})
	}
}

func TestEnvBadDuration(t *testing.T) {
	t.Setenv("EXACTLY_COMMIT_INTERVAL", "fast")
	_, err := Load(flags(t, "--instance-id=a"))
	want := `env EXACTLY_COMMIT_INTERVAL: commit_interval: invalid duration "fast": want a number and a unit (ms, s, m or h), such as 30s or 5m`
	if err == nil || err.Error() != want {
		t.Errorf("Load() error =\n%v\nwant\n%s", err, want)
	}
}

// A syntax error on a line under a setting the scope does not use is
// still reported: the file was not read at all.
func TestScopeKeepsSyntaxErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "set.yaml")
	if err := os.WriteFile(file, []byte("http:\n  addr: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	kafkaOnly.AddFlags(fs)
	if err := fs.Parse([]string{"--settings", file, "--instance-id=x"}); err != nil {
		t.Fatal(err)
	}
	_, err := kafkaOnly.Load(fs)
	if want := file + ":3:1: http.addr: did not find expected node content"; err == nil || err.Error() != want {
		t.Errorf("Load() = %v, want %s", err, want)
	}
}
