package topology

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// String formats p as file:line:col, the form editors and terminals turn
// into links. A zero line means the place in the file is unknown.
func (p Pos) String() string {
	switch {
	case p.Line <= 0:
		return p.File
	case p.File == "":
		return strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Error is one problem in a topology file.
type Error struct {
	Pos Pos
	// Key is the YAML path of the offending value, such as steps[1].filter
	// or sources[0].format; empty for problems with the file as a whole
	// (YAML syntax errors, an empty file).
	Key string
	Msg string
}

// Error formats e as file:line:col: key: message, dropping the parts that
// are unknown so the result never shows empty fields.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one topology file. Parse reports all of
// them at once, sorted by position, so one edit-and-retry round fixes as
// much as possible.
type Errors []*Error

// MaxPrintedErrors is how many problems Errors.Error lists; a last line
// counts the rest. A generated file can hold hundreds of thousands of
// problems, and a terminal of them helps nobody.
const MaxPrintedErrors = 100

// Error lists the problems one per line, the first MaxPrintedErrors of
// them, then how many more there are.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es[:min(len(es), MaxPrintedErrors)] {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	if n := len(es) - MaxPrintedErrors; n > 0 {
		what := "problems"
		if n == 1 {
			what = "problem"
		}
		b.WriteByte('\n')
		if f := es[0].Pos.File; f != "" {
			b.WriteString(f + ": ")
		}
		fmt.Fprintf(&b, "and %d more %s", n, what)
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders es by line, column, key and finally message, so output is
// deterministic whatever order the checks ran in, and drops exact
// duplicates (the same alias can be visited twice).
func (es Errors) sort() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Msg, b.Msg),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// errorf records a problem. Checks keep going after calling it: the point
// is to report everything in one pass.
func (p *parser) errorf(pos Pos, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...)})
}
