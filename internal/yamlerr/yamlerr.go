// Package yamlerr places yaml.v3 syntax errors in the file. yaml.v3 gives
// at most a line, sometimes the wrong one (its parser counts lines from
// 0, its scanner from 1, and a parser error names the line where the
// enclosing block starts), and some messages (a tab in the indentation)
// do not say what to fix. Both the pipeline files (package topology) and
// the settings file (package config) report syntax errors through here,
// as line:col and a message.
package yamlerr

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Error is a YAML syntax error and its place in the file, 1-based. Col is
// 1 when only the line is known.
type Error struct {
	Line, Col int
	Msg       string
}

// TabMsg replaces yaml.v3's messages for a tab in the indentation.
const TabMsg = "tabs are not allowed for indentation; indent with spaces"

// yamlLine matches yaml.v3 syntax errors that carry a line number.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner). The parser reports 0-based line numbers while the scanner
// reports 1-based ones, so the former need one added.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// Scanner messages about a tab where YAML wants spaces. yaml.v3 reports
// them on the line before the tab, or on the tab's line.
var tabProblems = []string{
	"found a tab character that violates indentation",
	"found a tab character where an indentation space is expected",
}

// yamlAnchor matches yaml.v3's error for an alias without anchor.
var yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// Locate places err, returned by yaml.v3 when decoding data, in data.
func Locate(data []byte, err error) Error {
	lines := strings.Split(string(data), "\n")
	msg := err.Error()
	if off := InvalidUTF8(data); off >= 0 {
		// yaml.v3 says so without a line.
		line, col := Offset(data, off)
		return Error{line, col, "invalid UTF-8"}
	}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		msg = m[2]
		col := 1
		switch {
		case slices.Contains(parserProblems, msg):
			line = locate(data, lines, line+1, msg)
		case slices.Contains(tabProblems, msg):
			// The first tab in an indentation from that line on.
			for k := max(line, 1) - 1; k < len(lines); k++ {
				if c := indentTab(lines[k]); c > 0 {
					line, col, msg = k+1, c, TabMsg
					break
				}
			}
		case msg == "found character that cannot start any token":
			// The same message serves '@' and '`' (reserved); a
			// tab among the indentation and indicators is the
			// usual cause.
			if k := line - 1; k >= 0 && k < len(lines) {
				if c := indentTab(lines[k]); c > 0 {
					col, msg = c, TabMsg
				}
			}
		}
		line = max(1, min(line, len(lines)))
		return Error{line, col, msg}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	// Without a line, a scanner or parser problem is on the first line
	// (yaml.v3 drops line 0), but these two can be anywhere.
	off := -1
	if m := yamlAnchor.FindStringSubmatch(err.Error()); m != nil {
		off = bytes.Index(data, []byte("*"+m[1]))
	} else if msg == "control characters are not allowed" {
		off = controlChar(data)
	}
	line, col := Offset(data, off)
	return Error{line, col, msg}
}

// indentTab returns the 1-based column of the first tab in the leading
// run of spaces, tabs and block indicators ("- ", "? ", ": ") of line, or
// 0 when there is none.
func indentTab(line string) int {
	for i, r := range line {
		switch r {
		case '\t':
			return utf8.RuneCountInString(line[:i]) + 1
		case ' ', '-', '?', ':':
		default:
			return 0
		}
	}
	return 0
}

// Files longer than this are not searched for the line of a YAML parser
// error: the search parses every prefix, quadratic in the file size.
const maxLocateBytes = 256 << 10

// locate finds the line of a yaml.v3 parser error. yaml.v3 gives the line
// where the enclosing block or flow collection starts, which may be far
// above the problem; the first prefix of the file, ending at or after that
// line, that fails with the same message ends on the offending line.
func locate(data []byte, lines []string, from int, msg string) int {
	if len(data) > maxLocateBytes {
		return from
	}
	end := 0
	for k, line := range lines {
		end = min(end+len(line)+1, len(data))
		if k+1 < from {
			continue
		}
		if err := check(data[:end]); err != nil && problem(err) == msg {
			return k + 1
		}
	}
	return from
}

// check returns the first syntax error in any document of data.
func check(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// problem is a yaml.v3 error message without its prefix and line.
func problem(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// Offset converts a byte offset in data into a 1-based line and column
// (in characters); a negative offset gives line 1, column 1.
func Offset(data []byte, off int) (line, col int) {
	if off < 0 {
		return 1, 1
	}
	before := data[:off]
	start := bytes.LastIndexByte(before, '\n') + 1
	return bytes.Count(before, []byte("\n")) + 1, utf8.RuneCount(before[start:]) + 1
}

// InvalidUTF8 returns the offset of the first invalid UTF-8 sequence in
// data, or -1.
func InvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// controlChar returns the offset of the first character YAML does not
// allow in a stream (YAML 1.2, production c-printable).
func controlChar(data []byte) int {
	for i, r := range string(data) {
		printable := r == '\t' || r == '\n' || r == '\r' ||
			(r >= 0x20 && r <= 0x7e) || r == 0x85 ||
			(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) ||
			(r >= 0x10000 && r <= 0x10ffff)
		if !printable {
			return i
		}
	}
	return -1
}
