package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestServer(t *testing.T) {
	reg := NewRegistry()
	p := NewPipeline(reg, "quickstart")
	p.TxnCommits.Inc()

	var mu sync.Mutex
	readyErr := errors.New("not ready: restoring 3 partitions")
	ready := func() error {
		mu.Lock()
		defer mu.Unlock()
		return readyErr
	}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s := NewServer("127.0.0.1:0", reg, ready, log)
	if got := s.Addr(); got != "127.0.0.1:0" {
		t.Errorf("Addr() before Listen = %q, want the configured %q", got, "127.0.0.1:0")
	}
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	addr := s.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr() after Listen = %q, want the bound port", addr)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if got := s.Addr(); got != addr {
		t.Errorf("Addr() while running = %q, want %q", got, addr)
	}
	base := "http://" + addr

	for _, tc := range []struct {
		path  string
		ready error
		code  int
		body  string // exact, or a substring for /metrics
	}{
		{"/metrics", readyErr, 200, `exactly_txn_commits_total{pipeline="quickstart"} 1`},
		{"/metrics", readyErr, 200, "go_goroutines"},
		{"/livez", readyErr, 200, "ok\n"},
		{"/readyz", readyErr, 503, "not ready: restoring 3 partitions\n"},
		{"/readyz", nil, 200, "ready\n"},
		{"/livez", nil, 200, "ok\n"},
	} {
		mu.Lock()
		readyErr = tc.ready
		mu.Unlock()
		code, body := get(t, base+tc.path)
		ok := body == tc.body
		if tc.path == "/metrics" {
			ok = strings.Contains(body, tc.body)
		}
		if code != tc.code || !ok {
			t.Errorf("GET %s (ready() = %v) = %d %q, want %d %q", tc.path, tc.ready, code, body, tc.code, tc.body)
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() after cancel = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run() did not return after its context ended")
	}
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Errorf("GET /livez after Run returned succeeded, want a refused connection")
	}
}

// TestServerRunListens checks Run binds by itself when Listen was not
// called.
func TestServerRunListens(t *testing.T) {
	s := NewServer("127.0.0.1:0", NewRegistry(), nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for strings.HasSuffix(s.Addr(), ":0") {
		if time.Now().After(deadline) {
			t.Fatal("Run() did not listen")
		}
		time.Sleep(time.Millisecond)
	}
	if code, body := get(t, "http://"+s.Addr()+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("GET /readyz with a nil ready = %d %q, want 200 %q", code, body, "ready\n")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run() after cancel = %v, want nil", err)
	}
}

func TestServerListenError(t *testing.T) {
	reg := NewRegistry()
	taken := NewServer("127.0.0.1:0", reg, nil, nil)
	if err := taken.Listen(); err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- taken.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	// Same registry: a second server must not fail on its handler metrics.
	s := NewServer(taken.Addr(), reg, nil, nil)
	err := s.Run(t.Context())
	if err == nil {
		t.Fatalf("Run() on the taken %s = nil, want an error", taken.Addr())
	}
	for _, want := range []string{"http.addr", taken.Addr()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run() on a taken address = %q, want it to name %q", err, want)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to
// dir, returning the file names and the certificate.
func selfSigned(t *testing.T, dir, name string, serial int64) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// serve runs s until the test ends and returns its address.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatalf("Listen() error: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() after cancel = %v, want nil", err)
		}
	})
	return s.Addr()
}

func TestServerTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := selfSigned(t, dir, "metrics", 1)
	s := NewServer("127.0.0.1:0", NewRegistry(), nil, slog.New(slog.NewTextHandler(t.Output(), nil))).WithTLS(certFile, keyFile)
	addr := serve(t, s)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	}
	resp, err := client(&tls.Config{RootCAs: roots}).Get("https://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET https://%s/metrics: %v", addr, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics over TLS = %d %.100q, want 200 with the metrics", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].SerialNumber.Int64() != 1 {
		t.Errorf("GET /metrics over TLS: peer certificate %v, want serial 1", resp.TLS)
	}

	// Plain HTTP to the TLS port gets Go's 400, not the metrics.
	if code, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusBadRequest {
		t.Errorf("GET http://%s/metrics = %d, want 400 from a TLS listener", addr, code)
	}
	// An untrusting client refuses the certificate.
	if _, err := client(&tls.Config{}).Get("https://" + addr + "/livez"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET /livez without the CA: err = %v, want a certificate error", err)
	}
	// TLS 1.1 and older are refused.
	if _, err := client(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}).Get("https://" + addr + "/livez"); err == nil {
		t.Errorf("GET /livez with TLS 1.1: err = nil, want a refused handshake")
	}

	// A rotated certificate is served without a restart.
	newCert, newKey, rotated := selfSigned(t, t.TempDir(), "metrics", 2)
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute)
		if err := os.Chtimes(f[1], later, later); err != nil {
			t.Fatal(err)
		}
	}
	roots.AddCert(rotated)
	resp, err = client(&tls.Config{RootCAs: roots}).Get("https://" + addr + "/livez")
	if err != nil {
		t.Fatalf("GET /livez after rotation: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 2 {
		t.Errorf("peer certificate serial after rotation = %d, want 2", got)
	}
}

func TestServerTLSBadFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := selfSigned(t, dir, "a", 1)
	_, otherKey, _ := selfSigned(t, dir, "b", 2)
	for _, tc := range []struct{ name, cert, key string }{
		{"missing", filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key")},
		{"mismatched", certFile, otherKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := NewServer("127.0.0.1:0", NewRegistry(), nil, nil).WithTLS(tc.cert, tc.key).Listen()
			if err == nil || !strings.Contains(err.Error(), "http.tls.cert_file") || !strings.Contains(err.Error(), "http.tls.key_file") {
				t.Errorf("Listen() with %s files = %v, want an error naming http.tls.cert_file and http.tls.key_file", tc.name, err)
			}
		})
	}
}

func TestServerBasicAuth(t *testing.T) {
	s := NewServer("127.0.0.1:0", NewRegistry(), nil, nil).WithBasicAuth("prom", "s3cret")
	base := "http://" + serve(t, s)

	for _, tc := range []struct {
		name, path string
		user, pass string
		auth       bool // send credentials
		code       int
	}{
		{"right", "/metrics", "prom", "s3cret", true, 200},
		{"right readyz", "/readyz", "prom", "s3cret", true, 200},
		{"wrong password", "/metrics", "prom", "s3creT", true, 401},
		{"wrong user", "/metrics", "Prom", "s3cret", true, 401},
		{"empty", "/metrics", "", "", true, 401},
		{"missing", "/metrics", "", "", false, 401},
		{"missing readyz", "/readyz", "", "", false, 401},
		{"livez open", "/livez", "", "", false, 200},
		{"livez wrong", "/livez", "x", "y", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("GET %s as %q/%q = %d %q, want %d", tc.path, tc.user, tc.pass, resp.StatusCode, body, tc.code)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if tc.code == 401 {
				if !strings.HasPrefix(challenge, "Basic ") {
					t.Errorf("GET %s = 401 with WWW-Authenticate %q, want a Basic challenge", tc.path, challenge)
				}
				if strings.Contains(string(body), "go_goroutines") {
					t.Errorf("GET %s = 401 with the metrics in the body", tc.path)
				}
			} else if tc.path == "/metrics" && !strings.Contains(string(body), "go_goroutines") {
				t.Errorf("GET %s = 200 %.100q, want the metrics", tc.path, body)
			}
		})
	}
}
