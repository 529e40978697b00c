package main

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// What the daemon logs (processor/processor.go), at --log-level info.
const (
	logAssigned = "partitions assigned"
	logRebuild  = "rebuilding the client"
	logFenced   = "producer fenced" // in the error of a rebuild after a fence
	// A table partition restored (processor/state.go), on one line: the
	// table source is named after its topic.
	logRestored  = "msg=restored "
	logTableNode = " node=" + tableTopic + " "
)

// tableRestoring reports whether the process logging to path has its
// partitions and has not restored a table partition yet: it is bringing
// its stores, the table among them, up to date.
func tableRestoring(path string) bool {
	n := logCounts(path, 0, []string{logAssigned}, []string{logRestored, logTableNode})
	return n[0] > 0 && n[1] == 0
}

// logContains reports whether the file at path contains s.
func logContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// logCounts counts, in the file at path from byte offset on, the lines
// that contain each of the given strings: counts[i] is for all of want[i].
func logCounts(path string, offset int64, want ...[]string) []int {
	counts := make([]int, len(want))
	f, err := os.Open(path)
	if err != nil {
		return counts
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return counts
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
	next:
		for i, subs := range want {
			for _, s := range subs {
				if !strings.Contains(line, s) {
					continue next
				}
			}
			counts[i]++
		}
	}
	return counts
}
