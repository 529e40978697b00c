package config

import (
	"strings"

	"github.com/spf13/pflag"
)

// Scope is the settings one command uses, as keys ("instance_id") and key
// prefixes ending in a dot ("kafka.tls."). A command that serves no HTTP
// has no use for http.*, and a settings file or environment shared with
// `exactly run` may well set them: Scope.AddFlags offers only the flags of
// the keys in scope, and Scope.Load decodes and checks only those keys,
// leaving the others at their zero value. Unknown keys in the settings
// file are still an error, whatever the scope. The nil Scope is every
// setting.
type Scope []string

// uses reports whether key is in scope.
func (sc Scope) uses(key string) bool {
	if sc == nil {
		return true
	}
	for _, k := range sc {
		if k == key || strings.HasSuffix(k, ".") && strings.HasPrefix(key, k) {
			return true
		}
	}
	return false
}

// AddFlags adds --settings and the flags of the settings in scope to fs.
func (sc Scope) AddFlags(fs *pflag.FlagSet) {
	all := pflag.NewFlagSet("", pflag.ContinueOnError)
	all.SortFlags = false // keep addFlags' order
	addFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		key, ok := flagKeys[f.Name]
		switch f.Name {
		case "settings":
			key, ok = "", true
		case "embedded": // sets kafka.brokers, but is about the embedded broker
			key, ok = "embedded.port", true
		}
		if ok && (key == "" || sc.uses(key)) {
			fs.AddFlag(f)
		}
	})
}

// Load is the package's Load for the settings in scope.
func (sc Scope) Load(fs *pflag.FlagSet) (*Settings, error) {
	return loadScoped(fs, sc)
}

// keep drops the errors about known keys out of scope. Errors about
// unknown keys, and those naming no key (a settings file that is not
// YAML), stay.
func (sc Scope) keep(errs Errors) Errors {
	if sc == nil {
		return errs
	}
	known := defaults()
	kept := errs[:0]
	for _, e := range errs {
		if _, isKnown := known[e.Key]; !isKnown || sc.uses(e.Key) {
			kept = append(kept, e)
		}
	}
	return kept
}
