package config

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// The registry client authenticates with the password from a file, over
// mutual TLS, and Redacted hides the password.
func TestRegistryClient(t *testing.T) {
	p := newPKI(t)
	reg := srfake.New(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("u:pw"))))
	defer reg.Close()
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = p.serverTLS(t, true)
	srv.StartTLS()
	defer srv.Close()
	url := srv.URL

	pwFile := t.TempDir() + "/pw"
	writeFile(t, pwFile, "pw\n")
	s := mustLoad(t, map[string]any{
		"registry.urls":                     []string{url},
		"registry.basic_auth.username":      "u",
		"registry.basic_auth.password_file": pwFile,
		"registry.tls.ca_file":              p.ca,
		"registry.tls.cert_file":            p.clientCert,
		"registry.tls.key_file":             p.clientKey,
	})
	if got := s.Redacted()["registry.basic_auth.password"]; got != "[redacted]" {
		t.Errorf("Redacted()[registry.basic_auth.password] = %v, want [redacted]", got)
	}
	cl, _, err := s.RegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(context.Background(), "s", sr.Schema{Schema: `"string"`}); err != nil {
		t.Fatalf("CreateSchema over mTLS with basic auth: %v", err)
	}

	// Without the client certificate the handshake fails.
	s2 := mustLoad(t, map[string]any{
		"registry.urls": []string{url}, "registry.basic_auth.username": "u", "registry.basic_auth.password_file": pwFile,
		"registry.tls.ca_file": p.ca,
	})
	cl2, _, err := s2.RegistryClient()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl2.Subjects(context.Background()); err == nil {
		t.Error("Subjects without a client certificate succeeded, want a TLS failure")
	}
}

func TestRegistryProblems(t *testing.T) {
	for _, tc := range []struct {
		kv   map[string]any
		want string
	}{
		{map[string]any{"registry.urls": []string{"localhost:8081"}}, "registry.urls"},
		{map[string]any{"registry.urls": []string{"http://r:8081"}, "registry.tls.ca_file": "x.pem"}, "no registry.urls is https"},
		{map[string]any{"registry.urls": []string{"http://r:8081"}, "registry.basic_auth.username": "u"}, "set without a password"},
		{map[string]any{"registry.urls": []string{"http://r:8081"}, "registry.basic_auth.username": "u", "registry.basic_auth.password": "p", "registry.bearer_token": "t"}, "one kind of credentials"},
	} {
		_, err := load(t, tc.kv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want an error containing %q", tc.kv, err, tc.want)
		}
	}
}
