package topology

import (
	"strings"
	"testing"
)

// drop_headers: a non-empty list of distinct, non-empty names; errors name
// the item.
func TestDropHeadersDecode(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"[a, b]", ""},
		{"[]", "steps[0].drop_headers: drop_headers needs at least one header name"},
		{"[a, a]", `steps[0].drop_headers[1]: header "a" is listed twice`},
		{`[""]`, "steps[0].drop_headers[0]: header name must not be empty"},
		{"a", "steps[0].drop_headers: expected a list"},
	} {
		yaml := "name: p\nsources: [{name: in, topic: in}]\nsteps:\n  - name: s\n    drop_headers: " + tc.value + "\nsinks: [{name: out, topic: out}]\n"
		topo, err := Parse("p.yaml", []byte(yaml))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.value, err)
		case tc.want == "" && strings.Join(topo.Steps[0].DropHeaders, ",") != "a,b":
			t.Errorf("%s: DropHeaders = %q", tc.value, topo.Steps[0].DropHeaders)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to contain %q", tc.value, err, tc.want)
		}
	}
}
