package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// shutdownTimeout bounds how long Run waits, once its context ends, for
// requests in flight (a scrape, a probe) before closing their connections.
const shutdownTimeout = 5 * time.Second

// Server serves the metrics and health endpoints of the process:
//
//	/metrics  the registry, in the Prometheus text or protobuf format
//	/livez    200 "ok" as long as the process serves HTTP at all
//	/readyz   200 "ready" when ready returns nil, else 503 with the error text
//
// Run it under the process's errgroup. It stops when its context ends;
// STYLE.md stops the HTTP server last, so to keep /metrics scrapable
// while the pipeline drains, give Run a context that ends after the
// pipeline has returned.
//
// WithTLS serves over TLS and WithBasicAuth guards /metrics and /readyz;
// /livez stays open, as the kubelet's probes send no credentials.
type Server struct {
	addr  string
	ready func() error
	log   *slog.Logger
	srv   *http.Server

	certs *certFiles // nil: plain HTTP
	auth  *basicAuth // nil: no authentication

	mu struct {
		sync.Mutex
		ln net.Listener // set by Listen; nil until then
	}
}

// NewServer returns a server for addr (the http.addr setting, host:port;
// port 0 picks a free one, see Addr) that serves reg. ready reports
// whether the pipeline can take traffic (processor.Processor.Ready fits):
// its error text, such as "not ready: restoring 3 partitions", is the 503
// body as is. A nil ready is always ready; a nil log discards. Nothing
// listens until Listen or Run.
func NewServer(addr string, reg *prometheus.Registry, ready func() error, log *slog.Logger) *Server {
	if ready == nil {
		ready = func() error { return nil }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{addr: addr, ready: ready, log: log}

	// ContinueOnError: one collector failing should not hide the others;
	// the failure is logged and counted in
	// promhttp_metric_handler_errors_total (registered on reg).
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	}))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.authorized(metrics))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /readyz", s.authorized(http.HandlerFunc(s.readyz)))
	s.srv = &http.Server{
		Handler: mux,
		// A probe or scraper that stalls must not pin a connection.
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// WithTLS serves over TLS (1.2 at least) with the PEM certificate (chain)
// and key in certFile and keyFile: the http.tls.cert_file and
// http.tls.key_file settings. Listen loads them, and fails naming both
// settings when it cannot. While serving, a handshake after either file
// changed loads the pair again, so a rotated certificate (cert-manager)
// is picked up without a restart; a pair that does not load is logged and
// the previous one kept. Empty files leave plain HTTP. Call it before
// Listen and Run.
func (s *Server) WithTLS(certFile, keyFile string) *Server {
	if certFile == "" && keyFile == "" {
		s.certs = nil
		return s
	}
	s.certs = &certFiles{cert: certFile, key: keyFile, log: s.log}
	return s
}

// WithBasicAuth requires HTTP basic authentication with user and password
// (http.basic_auth.username and password) on /metrics and /readyz; other
// requests there get 401 with a WWW-Authenticate challenge. /livez stays
// open. An empty user leaves the endpoints open. Without WithTLS the
// password crosses the network readable. Call it before Listen and Run.
func (s *Server) WithBasicAuth(user, password string) *Server {
	if user == "" {
		s.auth = nil
		return s
	}
	s.auth = &basicAuth{user: sha256.Sum256([]byte(user)), pass: sha256.Sum256([]byte(password))}
	return s
}

// basicAuth holds digests, not the credentials: comparing fixed-size
// digests in constant time tells a guesser nothing, not even the length.
type basicAuth struct{ user, pass [sha256.Size]byte }

func (a *basicAuth) ok(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	// Both comparisons always run, so timing does not tell a right user
	// with a wrong password from a wrong user.
	match := subtle.ConstantTimeCompare(u[:], a.user[:]) & subtle.ConstantTimeCompare(p[:], a.pass[:])
	return ok && match == 1
}

func (s *Server) authorized(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.auth != nil && !s.auth.ok(r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="exactly", charset="UTF-8"`)
			text(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.ready(); err != nil {
		text(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	text(w, http.StatusOK, "ready")
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}

// Listen binds the address without serving yet, so that a caller learns
// the port (Addr) or a bad http.addr before starting anything else, and
// so that a test can bind port 0 and read Addr without racing Run. Run
// calls it when it has not been called; calling it again does nothing.
// A Listen without Run holds the port until the process exits.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ln != nil {
		return nil
	}
	if s.certs != nil {
		if err := s.certs.load(); err != nil {
			return err
		}
		s.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.get,
		}
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http.addr %q: cannot listen for metrics and health checks "+
			"(is the port in use, or the host not an address of this machine? use :0 for any free port): %w", s.addr, err)
	}
	s.mu.ln = ln
	return nil
}

// Addr returns the address the server is bound to (with the real port
// when http.addr asked for port 0) once Listen has returned, and the
// configured address before. It is safe to call at any time.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.ln == nil {
		return s.addr
	}
	return s.mu.ln.Addr().String()
}

// Run listens (unless Listen did), serves until ctx ends, then shuts down
// gracefully: no new connections, requests in flight get up to 5s. It
// returns nil after a clean shutdown, the Listen error if it cannot bind,
// and a serving or shutdown error otherwise. A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.mu.ln
	s.mu.Unlock()
	s.log.Info("serving metrics and health checks", "addr", ln.Addr().String(), "tls", s.certs != nil, "basic_auth", s.auth != nil)

	served := make(chan error, 1)
	go func() {
		if s.certs != nil {
			// The certificate comes from TLSConfig.GetCertificate.
			served <- s.srv.ServeTLS(ln, "", "")
			return
		}
		served <- s.srv.Serve(ln)
	}()

	select {
	case err := <-served:
		// Serve returns only on a listener failure here: Shutdown has not
		// been called.
		return fmt.Errorf("serving metrics on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		// Requests still running after the timeout: cut them off so the
		// process can exit.
		_ = s.srv.Close()
		err = fmt.Errorf("stopping metrics server on %s within %s: %w", ln.Addr(), shutdownTimeout, err)
	}
	// Shutdown makes Serve return ErrServerClosed at once; wait for it so
	// no goroutine outlives Run.
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("serving metrics on %s: %w", ln.Addr(), serr)
	}
	return err
}

// promLogger sends promhttp's errors (a collector failing during a
// scrape) to slog.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("serving metrics", "err", fmt.Sprint(v...))
}

// certFiles serves a certificate pair from files, loading it again when a
// file changes.
type certFiles struct {
	cert, key string
	log       *slog.Logger

	mu struct {
		sync.Mutex
		stamp [2]time.Time // modification times of the last pair tried
		pair  *tls.Certificate
	}
}

func (f *certFiles) load() error {
	stamp, _ := f.stamp()
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		return fmt.Errorf("http.tls.cert_file %q, http.tls.key_file %q: cannot load the certificate and key "+
			"(want PEM files of a certificate and its matching private key): %w", f.cert, f.key, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.stamp, f.mu.pair = stamp, &pair
	return nil
}

func (f *certFiles) stamp() ([2]time.Time, error) {
	var st [2]time.Time
	for i, name := range []string{f.cert, f.key} {
		fi, err := os.Stat(name)
		if err != nil {
			return st, err
		}
		st[i] = fi.ModTime()
	}
	return st, nil
}

func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	stamp, err := f.stamp()
	f.mu.Lock()
	defer f.mu.Unlock()
	// A pair is tried once per change of either file. Rotation rarely
	// writes both at once: a new certificate beside the old key fails,
	// and the key's own change brings the next try.
	if err == nil && stamp != f.mu.stamp {
		f.mu.stamp = stamp
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			f.log.Warn("reloading http.tls certificate; serving the previous one", "cert_file", f.cert, "key_file", f.key, "err", err)
		} else {
			f.mu.pair = &pair
			f.log.Info("reloaded http.tls certificate", "cert_file", f.cert)
		}
	}
	return f.mu.pair, nil
}
