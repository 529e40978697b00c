package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrorsCapped(t *testing.T) {
	const n = MaxPrintedErrors + 50
	_, err := Parse("big.yaml", bigPipeline(n, "unknown"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != n {
		t.Fatalf("Parse(%d unknown inputs) = %d errors (%v), want %d", n, len(errs), err, n)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxPrintedErrors+1 {
		t.Fatalf("error text has %d lines, want %d", len(lines), MaxPrintedErrors+1)
	}
	if got, want := lines[0], errs[0].Error(); got != want {
		t.Errorf("first line = %q, want %q", got, want)
	}
	if got, want := lines[len(lines)-1], "big.yaml: and 50 more problems"; got != want {
		t.Errorf("last line = %q, want %q", got, want)
	}
	if got, want := (Errors{errs[0], errs[1]}).Error(), errs[0].Error()+"\n"+errs[1].Error(); got != want {
		t.Errorf("two errors print as %q, want %q", got, want)
	}
}

func TestTooManyNodes(t *testing.T) {
	// Flow style keeps the file small; the count is checked before any
	// node is decoded, so empty mappings do.
	var b bytes.Buffer
	b.WriteString("name: big\nsources: [{name: in, topic: in}]\nsinks: [{name: out, topic: out}]\nsteps: [")
	for i := range MaxNodes {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("{}")
	}
	b.WriteString("]\n")
	_, err := Parse("big.yaml", b.Bytes())
	// steps[49999] is node 50001 (after the source): the first past the limit.
	col := len("steps: [") + 1 + 3*(MaxNodes-1)
	want := fmt.Sprintf("big.yaml:4:%d: steps[%d]: too many nodes: %d sources, steps and sinks, more than the limit of %d; split the pipeline into several pipelines connected by topics",
		col, MaxNodes-1, MaxNodes+2, MaxNodes)
	if err == nil || err.Error() != want {
		t.Errorf("Parse(%d nodes) = %v, want %s", MaxNodes+2, err, want)
	}
}

func TestFileTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	line := "# " + strings.Repeat("x", 1021) + "\n" // 1 KiB
	data := []byte(minimal + strings.Repeat(line, 5<<10))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Reported where the file passes the limit.
	pos := (&parser{file: path}).offsetPos(data, MaxFileBytes)
	want := fmt.Sprintf("%s: the file passes the size limit of 4 MiB here (it is %s); split the pipeline into several pipelines connected by topics", pos, mib(int64(len(data))))
	if _, err := Load(path); err == nil || err.Error() != want {
		t.Errorf("Load(%d bytes) = %v, want %s", len(data), err, want)
	}
	if _, err := Parse(path, data); err == nil || err.Error() != want {
		t.Errorf("Parse(%d bytes) = %v, want %s", len(data), err, want)
	}
	if pos.Line < 2 || pos.Col < 1 {
		t.Errorf("limit reported at %s, want a line and column", pos)
	}
}

func TestParseInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if topo, err := ParseContext(ctx, "big.yaml", bigPipeline(10, "chain")); !errors.Is(err, context.Canceled) {
		t.Errorf("ParseContext(canceled) = %v, %v, want context.Canceled", topo, err)
	}
}
