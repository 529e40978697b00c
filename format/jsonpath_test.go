package format

import "testing"

func TestNumberText(t *testing.T) {
	doc := `{"a": "x\"}", "n": {"skip": [1, {"z": "]"}], "amount" : 100.00 }, "b": true, "amount": 7, "e\u0061": 1.50}`
	for _, tc := range []struct {
		path []string
		want string
		ok   bool
	}{
		{[]string{"n", "amount"}, "100.00", true},
		{[]string{"amount"}, "7", true},
		{[]string{"b"}, "", false},
		{[]string{"a"}, "", false},
		{[]string{"ea"}, "", false}, // written with an escape: not matched
		{[]string{"n", "missing"}, "", false},
		{[]string{"b", "x"}, "", false},
	} {
		got, ok := NumberText([]byte(doc), tc.path)
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("NumberText(%v) = %q, %v, want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	// A repeated key: the last one, as the decoder keeps.
	if got, _ := NumberText([]byte(`{"x": 1.0, "x": 2.50}`), []string{"x"}); string(got) != "2.50" {
		t.Errorf("repeated key: %q, want 2.50", got)
	}
}
