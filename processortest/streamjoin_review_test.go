package processortest

import (
	"strings"
	"testing"
)

// An unmatched row whose output fails (here other.id on a null other) is
// the buffered record's bad record, not the one whose event time closed
// its window: the closing record is joined and buffered as usual, the
// failed row goes to the dead-letter topic (its buffered value, headers
// and source coordinates), and the next records are not failed by the
// same closed window again and again.
func TestStreamStreamJoinUnmatchedOutputFails(t *testing.T) {
	base := strings.Replace(streamJoinYAML("left", ""),
		`output: '{"view": value == null ? null : value.id, "click": other == null ? null : other.id}'`,
		`output: '{"view": value.id, "click": other.id}'`, 1)
	t.Run("stop", func(t *testing.T) {
		d := New(t, base)
		d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
		d.Commit()
		d.Pipe("clicks", "k2", `{"id":"c2"}`, sec(100))
		err := d.PipeError("views", "k2", `{"id":"v2"}`, sec(100))
		// The error names v1 (views offset 0), once.
		if got := err.Error(); !strings.HasPrefix(got, `record views/0@0: node "joined": eval: unmatched row`) || strings.Count(got, "@") != 1 {
			t.Errorf("error = %q, want one naming v1 (views/0@0)", got)
		}
	})
	t.Run("skip", func(t *testing.T) {
		d := New(t, "on_error: skip\n"+base)
		d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
		d.Commit()
		d.Pipe("clicks", "k2", `{"id":"c2"}`, sec(100))
		d.Pipe("views", "k2", `{"id":"v2"}`, sec(100))
		d.Commit()
		if got, want := timed(d, "out"), `k2 {"click":"c2","view":"v2"} @01:40`; got != want {
			t.Errorf("output =\n%s\nwant\n%s", got, want)
		}
	})
	d := New(t, "on_error: dead_letter\ndead_letter_topic: dlq\n"+base)
	d.Pipe("views", "k1", `{"id":"v1"}`, sec(0)) // never matched: its row fails at close
	d.Commit()
	d.Pipe("clicks", "k2", `{"id":"c2"}`, sec(100))
	d.Pipe("views", "k2", `{"id":"v2"}`, sec(100)) // closes v1's window, matches c2
	d.Pipe("views", "k3", `{"id":"v3"}`, sec(101))
	d.Commit()
	if got, want := timed(d, "out"), `k2 {"click":"c2","view":"v2"} @01:40`; got != want {
		t.Errorf("output =\n%s\nwant\n%s", got, want)
	}
	dl := d.Records("dlq")
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1 (v1's row)", len(dl))
	}
	hs := map[string]string{}
	for _, h := range dl[0].Headers {
		hs[h.Key] = string(h.Value)
	}
	if got := string(dl[0].Value); got != `{"id":"v1"}` {
		t.Errorf("dead letter value = %s, want v1's", got)
	}
	if hs["exactly.source.topic"] != "views" || hs["exactly.source.offset"] != "0" || hs["exactly.node"] != "joined" {
		t.Errorf("dead letter headers = %v, want v1's source (views, offset 0) and node joined", hs)
	}
	if n := d.Counter("join_buffered", "joined"); n != 3 {
		t.Errorf("buffered = %v, want 3 (c2, v2, v3)", n)
	}
}

// A record that fails after its event time closed a window has its
// state changes undone, the window's expiry with them; the expiry done
// again by the next record is counted once.
func TestStreamStreamJoinExpiredCountedOnceAfterFailedRecord(t *testing.T) {
	yaml := strings.Replace(streamJoinYAML("inner", ""),
		`output: '{"view": value == null ? null : value.id, "click": other == null ? null : other.id}'`,
		`output: '{"view": value.id, "click": other.id}'`, 1)
	d := New(t, yaml)
	d.Pipe("views", "k1", `{"id":"v1"}`, sec(0))
	d.Commit()
	d.Pipe("clicks", "k2", `{"id":"c2"}`, sec(100))
	d.PipeError("views", "k2", `{"no_id":1}`, sec(100)) // closes v1's window, then fails
	d.Pipe("views", "k3", `{"id":"v3"}`, sec(100))      // closes it again
	d.Commit()
	if n := d.Counter("join_expired_window", "joined"); n != 1 {
		t.Errorf("expired (window) = %v, want 1 (v1)", n)
	}
	if n := d.Counter("join_buffered", "joined"); n != 2 {
		t.Errorf("buffered = %v, want 2 (c2, v3)", n)
	}
}
