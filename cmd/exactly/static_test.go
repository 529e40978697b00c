package main

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestStaticBuild builds the binary the way the Dockerfile does (cgo off,
// trimmed, stripped), checks it is statically linked (no ELF interpreter,
// so it runs in an empty image), and runs it.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(df, []byte("CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'")) {
		t.Fatal("the Dockerfile no longer builds with CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'; update this test with it")
	}
	bin := filepath.Join(t.TempDir(), "exactly")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("static build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary has an ELF interpreter: it is dynamically linked and would not run in an empty image")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "validate", "-c", "../../testdata/quickstart/pipeline.yaml", "--instance-id", "x").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("static binary: validate = %v\n%s", err, out)
	}
}

// TestDeployExample checks that deploy/kubernetes.yaml parses, runs as
// non-root with a read-only root filesystem, takes the instance id from
// the pod name, probes /livez and /readyz, and that its pipeline is valid.
func TestDeployExample(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	kinds := map[string]map[string]any{}
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		kinds[doc["kind"].(string)] = doc
	}
	for _, k := range []string{"ConfigMap", "Service", "StatefulSet"} {
		if kinds[k] == nil {
			t.Fatalf("deploy/kubernetes.yaml has no %s", k)
		}
	}
	pipeline := kinds["ConfigMap"]["data"].(map[string]any)["pipeline.yaml"].(string)
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(path, []byte(pipeline), 0o644)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"validate", "-c", path, "--instance-id", "x"}, &stdout, &stderr); err != nil {
		t.Errorf("the ConfigMap's pipeline is invalid: %v", err)
	}
	sts := string(b)
	for _, want := range []string{"readOnlyRootFilesystem: true", "runAsNonRoot: true", "fieldPath: metadata.name", "EXACTLY_INSTANCE_ID", "path: /livez", "path: /readyz", "prometheus.io/scrape: \"true\""} {
		if !strings.Contains(sts, want) {
			t.Errorf("deploy/kubernetes.yaml lacks %q", want)
		}
	}
}
