package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
type Server struct {
	addr  string
	ready func() error
	log   *slog.Logger
	srv   *http.Server

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
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	s.srv = &http.Server{
		Handler: mux,
		// A probe or scraper that stalls must not pin a connection.
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
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
	s.log.Info("serving metrics and health checks", "addr", ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(ln) }()

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
