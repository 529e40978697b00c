package processor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly-dev/exactly/internal/kafkaerr"
)

// connWarnEvery spaces the warnings about failing broker connections: kgo
// reconnects many times a second, and one line per attempt would bury
// everything else.
const connWarnEvery = 10 * time.Second

// startGiveUp is how long a start goes on trying to reach a cluster that
// never accepted a connection, when the failures are ones that might pass
// (refused, closed, no answer). Failures that retrying cannot fix
// (authentication, TLS certificates) fail the start at once. startSlow is
// when a start that has no connection yet says so, even before a
// connection attempt has failed (a TLS handshake that gets no answer
// fails only after kgo's request timeout).
const (
	startGiveUp = 30 * time.Second
	startSlow   = 5 * time.Second
)

// connWatch watches broker connections (a kgo.HookBrokerConnect). Every
// failed connection is counted; a warning naming the likely cause goes to
// the log at once and then at most every connWarnEvery, so wrong security
// settings are loud, not a silent reconnect loop. Until a connection has
// succeeded, a failure that cannot pass by itself (or connWatch.giveUp of
// failures of any kind) ends the start through fail, with the cause.
type connWatch struct {
	log  *slog.Logger
	fail context.CancelCauseFunc // ends the start; nil once started

	mu struct {
		sync.Mutex
		connected bool      // a connection has succeeded
		firstFail time.Time // of the failures since the last success
		lastWarn  time.Time
		failures  int // since the last warning
		last      *ConnectError
		// inSASL: brokers (by node id) to which a SASL request was
		// written since their last successful connection; a
		// connection to them closing then failed authentication.
		inSASL map[int32]bool
		tls    bool // the client dials with TLS
	}
}

func newConnWatch(log *slog.Logger, fail context.CancelCauseFunc) *connWatch {
	w := &connWatch{log: log, fail: fail}
	w.mu.inSASL = map[int32]bool{}
	return w
}

// dialsTLSFrom tells the watch whether cl dials with TLS, for its hints.
func (w *connWatch) dialsTLSFrom(cl *kgo.Client) {
	tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.tls = tc != nil
}

// OnBrokerWrite implements kgo.HookBrokerWrite: it notes SASL requests
// (SaslHandshake, SaslAuthenticate), so that a connection closed right
// after one is reported as failed authentication.
func (w *connWatch) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, _ error) {
	if key != 17 && key != 36 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.inSASL[meta.NodeID] = true
}

// ConnectError is a broker connection failure, with its likely cause.
type ConnectError struct {
	Addr  string
	Cause string // "authentication failed", "TLS handshake failed", ...
	Hint  string
	Err   error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("broker %s: %s (%s): %v", e.Addr, e.Cause, e.Hint, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// classify names the likely cause of a failed connection, and whether
// retrying can fix it: sasl when the connection failed after a SASL
// request, tlsOn when the client dials with TLS.
func classify(addr string, err error, sasl, tlsOn bool) (ce *ConnectError, lasting bool) {
	ce = &ConnectError{Addr: addr, Err: err}
	var (
		rhe  tls.RecordHeaderError
		ae   tls.AlertError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		nerr net.Error
	)
	msg := err.Error()
	switch {
	case kafkaerr.SASLFailed(err),
		strings.Contains(msg, "SASL"), strings.Contains(msg, "sasl"):
		ce.Cause, ce.Hint = "authentication failed", "check kafka.sasl.mechanism and the credentials, and that this listener uses SASL"
		return ce, true
	case errors.As(err, &rhe), errors.As(err, &ae), errors.As(err, &cve), errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie),
		strings.Contains(msg, "tls:"):
		ce.Cause, ce.Hint = "TLS handshake failed", "is kafka.tls.enabled set for a plaintext listener, or kafka.tls.ca_file wrong?"
		return ce, true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		strings.Contains(msg, "closed the connection"):
		switch {
		case sasl:
			ce.Cause, ce.Hint = "authentication failed", "the broker closed the connection during SASL authentication: does this listener use SASL, with kafka.sasl.mechanism enabled?"
			return ce, true
		case tlsOn:
			ce.Cause, ce.Hint = "connection closed by broker", "kafka.tls.enabled is set: is this listener plaintext?"
		default:
			ce.Cause, ce.Hint = "connection closed by broker", "does this listener want TLS (kafka.tls.enabled) or SASL (kafka.sasl.mechanism)?"
		}
		return ce, false
	case errors.As(err, &nerr) && nerr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		ce.Cause, ce.Hint = "no answer from broker", "is the broker reachable?"
		if tlsOn {
			ce.Cause, ce.Hint = "TLS handshake failed", "no answer to the TLS handshake: kafka.tls.enabled is set; is this listener plaintext, or the broker unreachable?"
		}
		return ce, false
	}
	ce.Cause, ce.Hint = "cannot connect", "is the broker address right and reachable?"
	return ce, false
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (w *connWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if errors.Is(err, context.Canceled) || kafkaerr.ClientClosed(err) {
		return // our own stop
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		if !w.mu.firstFail.IsZero() {
			w.log.Info("connected to Kafka after failed attempts", "broker", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), "failing_for", now.Sub(w.mu.firstFail).Round(time.Millisecond))
		}
		w.mu.connected, w.mu.firstFail, w.mu.failures, w.mu.last = true, time.Time{}, 0, nil
		delete(w.mu.inSASL, meta.NodeID)
		return
	}
	ce, lasting := classify(net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err, w.mu.inSASL[meta.NodeID], w.mu.tls)
	delete(w.mu.inSASL, meta.NodeID)
	w.mu.last = ce
	if w.mu.firstFail.IsZero() {
		w.mu.firstFail = now
	}
	w.mu.failures++
	if w.mu.lastWarn.IsZero() || now.Sub(w.mu.lastWarn) >= connWarnEvery {
		w.log.Warn("cannot connect to Kafka: "+ce.Cause, "broker", ce.Addr, "hint", ce.Hint, "failures", w.mu.failures, "err", err)
		w.mu.lastWarn, w.mu.failures = now, 0
	}
	if !w.mu.connected && w.fail != nil && lasting {
		w.fail(ce)
	}
}

// slow, called startSlow into the start, warns if no connection has
// succeeded yet.
func (w *connWatch) slow(after time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.connected || w.fail == nil {
		return
	}
	ce := w.noConnectionLocked(after)
	w.log.Warn("no connection to Kafka yet: "+ce.Cause, "after", after, "hint", ce.Hint, "err", ce.Err)
}

// giveUp, called startGiveUp into the start, fails the start if no
// connection has succeeded yet.
func (w *connWatch) giveUp(after time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.connected || w.fail == nil {
		return
	}
	w.fail(w.noConnectionLocked(after))
}

// noConnectionLocked is the cause of having no connection after a while:
// the last failure, or, when no attempt has failed yet (a TLS handshake
// waiting for an answer), a guess from the settings.
func (w *connWatch) noConnectionLocked(after time.Duration) *ConnectError {
	if w.mu.last != nil {
		return w.mu.last
	}
	ce := &ConnectError{Addr: "(any)", Cause: "no answer from broker", Hint: "is the broker address right and reachable?", Err: fmt.Errorf("no broker connection succeeded in %s", after)}
	if w.mu.tls {
		ce.Cause, ce.Hint = "TLS handshake failed", "no answer to the TLS handshake: kafka.tls.enabled is set; is this listener plaintext, or the broker unreachable?"
	}
	return ce
}

// lastFailure returns the last connection failure, if no connection has
// succeeded since.
func (w *connWatch) lastFailure() *ConnectError {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.last
}

// started ends the watch's power to fail the start: from now on, failures
// are only warned about (kgo goes on retrying).
func (w *connWatch) started() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = nil
}
