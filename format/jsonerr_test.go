package format

import "testing"

// TestJSONErrorCharacter checks that a decode error shows the character
// found, not its first byte read as Latin-1 ('Ã' for 'ü').
func TestJSONErrorCharacter(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a": ü}`, `invalid JSON: unexpected 'ü' at byte 6, want a value`},
		{`[1, 日本]`, `invalid JSON: unexpected '日' at byte 4, want a value`},
		{`{"a" 1}`, `invalid JSON: unexpected '1' at byte 5, want ':' after an object key`},
		{"[\x01]", `invalid JSON: unexpected '\x01' at byte 1, want a value`},
	}
	for _, tt := range tests {
		_, err := decodeJSON([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("decodeJSON(%q) error = %v, want %s", tt.in, err, tt.want)
		}
	}
}
