// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

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
	s := &Server{ln: ln, log: log}
	s.srv = &http.Server{Handler: Handler(sink, log), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	return s, nil
}

// Handler is the endpoint's HTTP handler.
func Handler(sink *Sink, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(sink,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorLog:            errorLog{log},
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := sink.health(time.Now())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "droptrace: /metrics (Prometheus, OpenMetrics), /healthz")
	})
	return mux
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the endpoint, letting scrapes in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("metrics endpoint", "err", fmt.Sprint(v...)) }
