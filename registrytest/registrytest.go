// Package registrytest gives tests a Confluent-compatible Schema
// Registry: Apicurio Registry (in-memory storage, its Confluent API under
// /apis/ccompat/v7) run as a JVM on loopback when
// EXACTLY_TEST_REGISTRY=apicurio, else franz-go's in-process srfake.
//
// srfake is fast and needs nothing, but it accepts every schema (its
// compatibility check is a stub) and answers what franz-go's authors
// read the API to say. Apicurio is a registry other teams run: the
// tests that must hold against a real one (Avro round trips through a
// pipeline, compatibility failures at start, validate --registry) run
// on it in CI. Karapace, the other registry that runs without Docker,
// is not on PyPI.
//
// The registry is built once from Maven Central into
// .cache/apicurio-<Version> (see apicurio/pom.xml for why it is built,
// not downloaded) and started once per test binary, shared by its
// tests: each names its subjects uniquely.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Env selects the registry: "apicurio" for Apicurio Registry, anything
// else (or unset) for srfake.
const Env = "EXACTLY_TEST_REGISTRY"

// Version is the Apicurio Registry release apicurio/pom.xml builds.
const Version = "2.4.2.Final"

// Real reports whether the tests run against Apicurio Registry.
func Real() bool { return os.Getenv(Env) == "apicurio" }

// URL returns the base URL of a registry for t: the shared Apicurio
// Registry when Real, else a new srfake closed when t ends.
func URL(t testing.TB) string {
	t.Helper()
	if !Real() {
		reg := srfake.New()
		t.Cleanup(reg.Close)
		return reg.URL()
	}
	shared.once.Do(func() { shared.url, shared.err = start() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.url
}

var shared struct {
	once  sync.Once
	url   string
	err   error
	guard *os.File // the watchdog's stdin: reachable, so never closed by a finalizer
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("registrytest: cannot find its own source file to locate apicurio/pom.xml")
	}
	return filepath.Dir(filepath.Dir(file)), nil
}

// Jar returns the runnable registry jar, building it with Maven into
// .cache/apicurio-<Version> when missing. Test binaries of several
// packages may call it at once: a file lock lets one build while the
// others wait.
func Jar() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	cache := filepath.Join(root, ".cache")
	dir := filepath.Join(cache, "apicurio-"+Version)
	jar := filepath.Join(dir, "apicurio-registry-runner.jar")
	if _, err := os.Stat(jar); err == nil {
		return jar, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "apicurio-"+Version+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("registrytest: locking %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(jar); err == nil {
		return jar, nil // another test binary built it meanwhile
	}
	for _, tool := range []string{"java", "mvn"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("registrytest: %s not found: Apicurio Registry is built with Maven and runs on Java 17 (apt-get install openjdk-17-jre-headless maven), or unset %s to use srfake", tool, Env)
		}
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	pom := filepath.Join(root, "registrytest", "apicurio")
	cmd := exec.Command("mvn", "-q", "-B", "-s", filepath.Join(pom, "settings.xml"), "-f", filepath.Join(pom, "pom.xml"),
		"package", "-Dexactly.out="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("registrytest: building Apicurio Registry %s with Maven failed (is Maven Central reachable?): %v\n%s", Version, err, out)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return jar, nil
}

// start builds (once) and starts the registry on a free loopback port,
// and waits for its Confluent API to answer. The JVM runs in a process
// group of its own with a watchdog that SIGKILLs it when the test binary
// exits, however it exits, as kafkatest does for brokers.
func start() (string, error) {
	jar, err := Jar()
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.CreateTemp("", "apicurio-*.log")
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command("java", "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		fmt.Sprintf("-Dquarkus.http.port=%d", port), "-Dquarkus.http.host=127.0.0.1",
		"-jar", jar)
	cmd.Dir = filepath.Dir(jar)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("registrytest: starting Apicurio Registry: %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		cmd.Process.Kill()
		return "", err
	}
	dog := exec.Command("sh", "-c", fmt.Sprintf(`read x; kill -9 -%d`, cmd.Process.Pid))
	dog.Stdin = pr
	dog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := dog.Start(); err != nil {
		cmd.Process.Kill()
		return "", err
	}
	pr.Close()
	// pw stays open for the life of the test binary: its end is the
	// watchdog's signal.
	shared.guard = pw
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	url := fmt.Sprintf("http://127.0.0.1:%d/apis/ccompat/v7", port)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/subjects", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, nil
			}
		}
		select {
		case err := <-exited:
			return "", fmt.Errorf("registrytest: Apicurio Registry exited at start (%v); its log:\n%s", err, tail(logf.Name(), 30))
		case <-ctx.Done():
			return "", fmt.Errorf("registrytest: Apicurio Registry did not answer on %s within 3m; its log:\n%s", url, tail(logf.Name(), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
