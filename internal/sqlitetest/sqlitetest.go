// Package sqlitetest runs SQLite, through Python's sqlite3 module, as the
// independent computation that tests hold the runtime's answers to.
// python3 is on every machine this project builds on; without it a test
// fails under CI and is skipped elsewhere.
package sqlitetest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Rows runs a Python script that reads input as JSON on its standard
// input, loads it into SQLite and prints one line per result row (its
// columns joined with |), and returns the rows, sorted.
func Rows(t testing.TB, script string, input any) []string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 (with sqlite3) is needed for the SQL differential tests")
		}
		t.Skip("python3 not installed")
	}
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sqlite: %v\n%s", err, stderr.String())
	}
	rows := strings.Fields(string(out))
	slices.Sort(rows)
	return rows
}
