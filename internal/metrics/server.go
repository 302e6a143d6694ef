// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// ListenAddr is where --metrics-addr binds. An address without a host (":9000") binds the
// loopback address only: the endpoint tells anyone who can reach it how the host is loaded
// and what it drops, so exposing it beyond the host must be asked for ("0.0.0.0:9000",
// "[::]:9000" or an interface's address).
func ListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %q: want host:port or :port (%v)", addr, err)
	}
	if port == "" {
		return "", fmt.Errorf("--metrics-addr %q: no port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// Server serves a Sink's metrics over HTTP: /metrics (Prometheus text or OpenMetrics, as the
// scraper asks), /healthz (200 while intervals keep coming) and an index at /.
//
// The endpoint is reachable by every local user, so what a client can cost is bounded: at most
// MaxConns connections (see limitListener), timeouts on every phase of a request, small
// headers, and /metrics served from a rendering made at most once per interval record.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// Limits of the endpoint. A scrape is one small request on one connection; these leave room
// for several scrapers and a person with curl, and nothing for a flood.
const (
	MaxConns          = 64
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = 30 * time.Second
	WriteTimeout      = 10 * time.Second
	MaxHeaderBytes    = 8 << 10
)

// Serve listens on addr (see ListenAddr) and serves sink's metrics, with the Go runtime's and
// the process's, until Shutdown.
func Serve(addr string, sink *Sink, log *slog.Logger) (*Server, error) {
	bind, err := ListenAddr(addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	return serve(ln, MaxConns, newEndpoint(sink, log), log), nil
}

func serve(inner net.Listener, maxConns int, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	ln := newLimitListener(inner, maxConns)
	s := &Server{ln: ln, log: log}
	s.srv = &http.Server{
		Handler:           ln.track(h),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		WriteTimeout:      WriteTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       ln.connContext,
		ConnState:         ln.connState,
		ErrorLog:          stdlog.New(io.Discard, "", 0), // a client's bad request is not droptrace's error
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s
}

// Handler is the endpoint's HTTP handler.
func Handler(sink *Sink, log *slog.Logger) http.Handler {
	return newEndpoint(sink, log)
}

// endpoint serves /metrics from a cache: the rendering of each format is made once per
// generation of the sink (a new record), so N scrapes of one interval cost one render and N
// writes of the same bytes.
type endpoint struct {
	sink *Sink
	reg  *prometheus.Registry
	log  *slog.Logger
	mux  *http.ServeMux

	mu      sync.Mutex // held while rendering: concurrent scrapes wait for one render
	gen     uint64
	cache   map[expfmt.Format][]byte
	renders atomic.Uint64
}

func newEndpoint(sink *Sink, log *slog.Logger) *endpoint {
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(sink,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e := &endpoint{sink: sink, reg: reg, log: log, mux: http.NewServeMux()}
	e.mux.HandleFunc("GET /metrics", e.metrics)
	e.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := sink.health(time.Now())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	e.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "droptrace: /metrics (Prometheus, OpenMetrics), /healthz")
	})
	return e
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

func (e *endpoint) metrics(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	body, err := e.rendering(format)
	if err != nil {
		e.log.Error("metrics endpoint", "err", err)
		http.Error(w, "cannot render metrics", http.StatusInternalServerError)
		return
	}
	w.Header().Add("Vary", "Accept")
	w.Header().Set("Content-Type", string(format))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// rendering returns format's rendering of the sink's latest generation, rendering it when
// the sink has moved on since the last one.
func (e *endpoint) rendering(format expfmt.Format) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// The generation is read before gathering: a record added meanwhile makes the next
	// scrape render again, never a stale rendering kept.
	gen := e.sink.generation()
	if gen != e.gen || e.cache == nil {
		e.gen, e.cache = gen, map[expfmt.Format][]byte{}
	}
	if b, ok := e.cache[format]; ok {
		return b, nil
	}
	e.renders.Add(1)
	mfs, err := e.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather metrics: %w", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return nil, fmt.Errorf("encode metrics: %w", err)
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, fmt.Errorf("encode metrics: %w", err)
		}
	}
	e.cache[format] = buf.Bytes()
	return buf.Bytes(), nil
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the endpoint, letting scrapes in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
