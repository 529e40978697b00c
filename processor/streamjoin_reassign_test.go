package processor

import (
	"strings"
	"testing"
	"time"
)

// A task of a stream-stream join with idle_timeout that comes back to a
// member after a while away starts afresh on the wall clock, as a task
// assigned for the first time does: the wall times of its sides' last
// records from before it left do not make both look quiet at once, which
// moved the clock on by the whole time away, closing open windows and
// making on-time records late.
func TestStreamStreamJoinReassignedTaskNotIdle(t *testing.T) {
	topo := mustParse(t, strings.Replace(streamJoinYAML("idle_timeout: 1m"), "within: 5s", "within: 10s", 1))
	start := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	h, err := NewHarness(topo, 1, start)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(h.Input("views", 0, []byte("k1"), []byte(`{"id":1}`), start))
	check(h.Commit())
	check(h.Reassign(0, 10*time.Minute))
	check(h.Advance(time.Second))
	check(h.Input("clicks", 0, []byte("k1"), []byte(`{"id":2}`), start.Add(5*time.Second)))
	check(h.Commit())
	var got []string
	for _, r := range h.Output("out") {
		got = append(got, string(r.Value))
	}
	if want := `{"click":2,"view":1}`; strings.Join(got, "\n") != want {
		t.Errorf("output =\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}
