package suggest

import "testing"

func TestClosest(t *testing.T) {
	keys := []string{"name", "from", "filter", "map", "flat_map", "key", "route", "set_headers"}
	settings := []string{"kafka.session_timeout", "kafka.transaction_timeout", "log.format", "log.level"}
	mechanisms := []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM"}
	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{"filtr", keys, "filter"},
		{"Name", keys, "name"},
		{"fro", keys, "from"},
		{"flatmap", keys, "flat_map"},
		{"set_header", keys, "set_headers"},
		{"x", keys, ""},
		{"partitions", keys, ""},
		{"name", keys, ""},         // itself is no suggestion
		{"ab", []string{"xy"}, ""}, // two edits in two runes: noise
		{"kafka.sesion_timeout", settings, "kafka.session_timeout"},
		{"log.levle", settings, "log.level"},
		{"log.fromat", settings, "log.format"},
		{"scram-sha-512", mechanisms, "SCRAM-SHA-512"},
		{"SCRAM-SHA256", mechanisms, "SCRAM-SHA-256"},
		{"plain", mechanisms, "PLAIN"},
		{"GSSAPI", mechanisms, ""},
		// The nearest wins over the first within reach.
		{"abcd", []string{"abxy", "abcx"}, "abcx"},
		// At the same distance, the first in order.
		{"abcd", []string{"abcx", "abcy"}, "abcx"},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", tt.word, tt.candidates, got, tt.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	if got, want := DidYouMean("colums", []string{"columns", "emit"}), `; did you mean "columns"?`; got != want {
		t.Errorf("DidYouMean(colums) = %q, want %q", got, want)
	}
	if got := DidYouMean("zzzz", []string{"columns"}); got != "" {
		t.Errorf("DidYouMean(zzzz) = %q, want none", got)
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"flaw", "lawn", 2},
		{"größe", "grösse", 2}, // runes, not bytes
		{"same", "same", 0},
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
