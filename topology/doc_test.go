package topology

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// doc.go is what the reference tables make: a key added to the decoder
// (its table in reference.go, or an operation's spec) appears in the
// reference, and a reference edited by hand is caught. go generate (or
// go test -run TestReferenceIsGenerated -update) rewrites it.
func TestReferenceIsGenerated(t *testing.T) {
	want := reference()
	if *update {
		if err := os.WriteFile("doc.go", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("doc.go is not what reference.go and the operations' specs make; run go generate ./topology (diff: write reference() and compare)")
	}
}

// The reference names every value the decoder accepts for keys whose
// values are a closed list, and every key of every operation (an
// operation's keys are described in its doc text, not in a key table).
func TestReferenceCoversEveryKey(t *testing.T) {
	doc := reference()
	lists := map[string][]string{
		"emit": emits, "fn": aggFuncs, "on_error": policies,
	}
	for _, s := range opSpecs {
		lists[string(s.kind)] = s.keys
		if s.doc == "" {
			t.Errorf("operation %s has no doc text", s.kind)
		}
	}
	for what, keys := range lists {
		for _, k := range keys {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).MatchString(doc) {
				t.Errorf("the reference does not mention %s key or value %q", what, k)
			}
		}
	}
}

// An operation's keys are named in its own doc text, not just somewhere.
func TestOperationDocNamesItsKeys(t *testing.T) {
	for _, s := range opSpecs {
		if slices.Equal(s.keys, branchKeys) || slices.Equal(s.keys, aggregateKeys) || slices.Equal(s.keys, dedupeKeys) {
			continue // keys with a table of their own in reference.go
		}
		for _, k := range s.keys {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).MatchString(s.doc) {
				t.Errorf("operation %s: doc does not name its key %q", s.kind, k)
			}
		}
	}
}
