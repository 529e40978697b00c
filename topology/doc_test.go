package topology

import (
	"os"
	"regexp"
	"testing"
)

// The reference (doc.go, which the README calls the full schema) covers
// every key the decoder accepts and every operation: a key added to the
// decoder without a line in the reference fails here.
func TestReferenceCoversEveryKey(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	lists := map[string][]string{
		"pipeline": topKeys, "source": sourceKeys, "sink": sinkKeys, "step": stepKeys, "route branch": branchKeys,
		"aggregate": aggregateKeys, "column": columnKeys, "window": windowKeys, "dedupe": dedupeKeys, "limits": limitKeys,
		"emit": emits, "fn": aggFuncs, "on_error": policies,
	}
	for _, s := range opSpecs {
		lists[string(s.kind)] = s.keys
	}
	for what, keys := range lists {
		for _, k := range keys {
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).Match(doc) {
				t.Errorf("doc.go does not mention %s key or value %q", what, k)
			}
		}
	}
}
