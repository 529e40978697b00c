package processortest

import (
	"testing"
	"time"
)

// drop_headers removes the named headers and keeps the others, whatever
// their order.
func TestDropHeaders(t *testing.T) {
	d := New(t, `name: p
sources: [{name: in, topic: in}]
steps:
  - name: tag
    set_headers: {trace: '"t1"', keep: '"k"'}
  - name: strip
    drop_headers: [trace, secret]
sinks: [{name: out, topic: out}]
`)
	d.PipeTo("in", 0, []byte("k"), []byte(`{}`), time.Unix(0, 0))
	d.Commit()
	rs := d.Records("out")
	if len(rs) != 1 {
		t.Fatalf("%d records, want 1", len(rs))
	}
	var got []string
	for _, h := range rs[0].Headers {
		got = append(got, h.Key+"="+string(h.Value))
	}
	if len(got) != 1 || got[0] != "keep=k" {
		t.Errorf("headers = %q, want only keep=k (trace dropped, secret absent)", got)
	}
}
