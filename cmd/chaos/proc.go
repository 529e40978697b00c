package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is a child process whose stdout and stderr go to a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string
	started time.Time
	done    chan struct{} // closed once the process has exited
	err     error         // cmd.Wait's error; read after done

	// expected is set before the harness signals the process to end, so
	// its watcher can tell a kill or stop from a crash.
	expected atomic.Bool
}

func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	// Several instances share the host: each serves /metrics on a free
	// port instead of the default :9090. An environment variable, not
	// --http-addr, so binaries without the setting run too.
	cmd.Env = append(os.Environ(), "EXACTLY_HTTP_ADDR=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, started: time.Now(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig unless the process has already exited.
func (p *proc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.expected.Store(true)
	p.signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM (and SIGCONT, in case it is paused) and waits up to d
// for an exit with status 0. On timeout it kills the process.
func (p *proc) stop(d time.Duration) error {
	p.expected.Store(true)
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited with %v after SIGTERM, want exit status 0", p.name, p.err)
		}
		return nil
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM (killed)", p.name, d)
	}
}

// logSize is how many bytes the process has logged so far.
func (p *proc) logSize() int64 {
	fi, err := os.Stat(p.log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// tail returns the last n lines of a log file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startBroker runs `exactly broker` as its own process and returns it with
// the address it prints alone on its first stdout line.
func startBroker(ctx context.Context, bin, logDir string, partitions int) (*proc, string, error) {
	logPath := filepath.Join(logDir, "broker.log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, "", err
	}
	n := fmt.Sprint(partitions)
	cmd := exec.Command(bin, "broker", "--port", "0", "--partitions", n, "--topic", "in:"+n, "--topic", "out:"+n)
	cmd.Stdout, cmd.Stderr = pw, f
	if err := cmd.Start(); err != nil {
		f.Close()
		pr.Close()
		pw.Close()
		return nil, "", fmt.Errorf("starting the broker: %w", err)
	}
	pw.Close()
	p := &proc{name: "broker", cmd: cmd, log: logPath, started: time.Now(), done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		br := bufio.NewReader(pr)
		line, _ := br.ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(f, br) // anything else it prints
		pr.Close()
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		if a == "" {
			p.kill()
			return nil, "", fmt.Errorf("the broker printed no address:\n%s", tail(logPath, 20))
		}
		return p, a, nil
	case <-time.After(20 * time.Second):
	case <-ctx.Done():
	}
	p.kill()
	return nil, "", errors.New("the broker did not print its address within 20s")
}

// buildBinary builds ./cmd/exactly of the module the working directory is
// in, into dir.
func buildBinary(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding the module root (go env GOMOD = %q, %v): run from inside the exactly module or pass --bin", gomod, err)
	}
	bin := filepath.Join(dir, "exactly")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/exactly")
	cmd.Dir = filepath.Dir(gomod)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/exactly in %s: %v\n%s", cmd.Dir, err, buf.String())
	}
	return bin, nil
}
