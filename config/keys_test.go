package config

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var update = flag.Bool("update", false, "rewrite the settings table in ../README.md from the settings list")

// The README's settings table lies between these lines.
const (
	readmeFile  = "../README.md"
	tableBegin  = "<!-- settings table: generated from config/keys.go by `go test ./config -update`; do not edit -->\n"
	tableEnd    = "<!-- end of settings table -->\n"
	readmeFixed = "run go test ./config -update to regenerate it from config/keys.go"
)

// TestReadmeTable fails when the README's settings table is not the one
// the settings list makes; -update rewrites it.
func TestReadmeTable(t *testing.T) {
	data, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	i := strings.Index(readme, tableBegin)
	j := strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no settings table between %q and %q", readmeFile, tableBegin, tableEnd)
	}
	got, want := readme[i+len(tableBegin):j], ReadmeTable()
	if got == want {
		return
	}
	if *update {
		readme = readme[:i+len(tableBegin)] + want + readme[j:]
		if err := os.WriteFile(readmeFile, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for k := range max(len(gl), len(wl)) {
		var g, w string
		if k < len(gl) {
			g = gl[k]
		}
		if k < len(wl) {
			w = wl[k]
		}
		if g != w {
			t.Fatalf("%s settings table, line %d:\n got %s\nwant %s\n%s", readmeFile, k+1, g, w, readmeFixed)
		}
	}
}

// A flag's help that names its default names the real one.
func TestUsageDefaults(t *testing.T) {
	for _, s := range settings {
		m := usageDefault.FindStringSubmatch(s.usage)
		if m == nil || m[1] == ":" {
			continue // says none, or in words ("(default: host name)")
		}
		said := m[2]
		if u, err := strconv.Unquote(said); err == nil {
			said = u
		}
		if said != s.defaultText() {
			t.Errorf("--%s help says (default %s), the default of %s is %s", s.flag, m[2], s.key, s.defaultText())
		}
	}
}

// Every setting is one row of the list: one key, one flag each, and the
// flags are those AddFlags adds.
func TestSettingsList(t *testing.T) {
	keys, flags := map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		if keys[s.key] {
			t.Errorf("setting %s listed twice", s.key)
		}
		keys[s.key] = true
		if s.flag != "" {
			if flags[s.flag] {
				t.Errorf("flag --%s listed twice", s.flag)
			}
			flags[s.flag] = true
		}
		if s.usage == "" {
			t.Errorf("setting %s has no usage", s.key)
		}
	}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := flagKeys[f.Name]; !ok && f.Name != "settings" && f.Name != "embedded" {
			t.Errorf("flag --%s sets no setting", f.Name)
		}
	})
	for name := range flagKeys {
		if fs.Lookup(name) == nil {
			t.Errorf("flag --%s of the list is not added", name)
		}
	}
}

// A setting is read from the environment variable the README names.
func TestEnvNames(t *testing.T) {
	for _, s := range settings {
		if _, ok := s.def.(string); !ok || secretKeys[s.key] || strings.HasSuffix(s.key, "_file") {
			continue // "from-env" is not a value of it, or not a file to read
		}
		t.Run(s.key, func(t *testing.T) {
			t.Setenv(envName(s.key), "from-env")
			args := []string{"--instance-id=a"}
			if s.key == "instance_id" {
				args = nil // the flag would win
			}
			got, err := Load(flags(t, args...))
			switch {
			case err != nil:
				// Not a valid value of this setting: reported as
				// coming from the variable, so it was read.
				if !strings.Contains(err.Error(), "env "+envName(s.key)+": "+s.key+": ") {
					t.Errorf("Load() with %s=from-env = %v, want an error naming the variable", envName(s.key), err)
				}
			case got.Redacted()[s.key] != "from-env":
				t.Errorf("Load() with %s=from-env: %s = %v, want from-env", envName(s.key), s.key, got.Redacted()[s.key])
			}
		})
	}
}
