package kafkatest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUTime is the user+sys CPU time node's running JVM has used so far,
// from /proc (Linux only), at the kernel's 10 ms resolution.
func (c *Cluster) CPUTime(node int32) (time.Duration, error) {
	n := c.node(node)
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || !c.Running(node) {
		return 0, fmt.Errorf("kafkatest: node %d is not running", node)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("kafkatest: reading node %d's CPU time: %w", node, err)
	}
	// pid (comm) state ppid ...: utime and stime are the 14th and 15th
	// fields, the 12th and 13th after the comm, which may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("kafkatest: node %d: unexpected /proc stat %q", node, s)
	}
	var ticks int64
	for _, x := range f[11:13] {
		t, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("kafkatest: node %d: unexpected /proc stat %q", node, s)
		}
		ticks += t
	}
	// USER_HZ is 100 on every Linux the tests run on.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
