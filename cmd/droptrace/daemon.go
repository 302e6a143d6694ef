// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/metrics"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
	"github.com/droptrace/droptrace/internal/session"
)

// fleetFlags are the options for running droptrace as a service: daemon mode, the Prometheus
// endpoint and a size-rotated output.
type fleetFlags struct {
	daemon      bool
	metricsAddr string
	maxSize     byteSize
	keep        int
}

func (ff *fleetFlags) set(fs *pflag.FlagSet) {
	fs.BoolVar(&ff.daemon, "daemon", false, "run as a service (systemd, Kubernetes): no live view, no JSON lines on stdout unless --output -, logs on stderr; SIGTERM ends the session cleanly, SIGHUP is ignored")
	fs.StringVar(&ff.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on this address, e.g. :9000 (no host: 127.0.0.1 only); 0.0.0.0:9000 and [::]:9000 both listen on every IPv4 and IPv6 address: for one family give an address of it, e.g. 192.0.2.10:9000 or [2001:db8::10]:9000; off when empty")
	fs.Var(&ff.maxSize, "output-max-size", "rotate --output FILE when it would grow past this size, 64K to 1024G (e.g. 64M; 0: never); an existing FILE is kept as FILE.1 at start")
	fs.IntVar(&ff.keep, "output-keep", 5, "rotated files to keep with --output-max-size (FILE.1 newest ... FILE.N), 0 to 1000")
}

// fleet is what fleetFlags set up for one session.
type fleet struct {
	metrics  *metrics.Sink
	server   *metrics.Server
	records  session.Sink   // a rotated output, when asked for
	writer   *record.Writer // records' writer
	closeOut func() error
	log      *slog.Logger
}

// check checks the fleet flags against the others before anything is opened. In daemon mode
// it turns the live view off (f.live) and keeps stdout free of records unless --output - asks
// for them. Its errors are usage errors (checkOutputs); --output-keep's range is
// validateBounds'.
func (ff *fleetFlags) check(f *flags) error {
	if ff.maxSize > 0 && !f.outputFile() && (f.pcap.path == "" || f.pcap.stdout()) {
		return fmt.Errorf("--output-max-size %s: give --output FILE (or --pcap FILE)", ff.maxSize.String())
	}
	if ff.daemon {
		if f.live == "on" {
			return errors.New("--daemon has no live view: drop --live on")
		}
		f.live = "off"
		if f.output == "" && ff.metricsAddr == "" && f.pcap.path == "" {
			return errors.New("--daemon needs somewhere to put what it sees: --output FILE, --pcap FILE and/or --metrics-addr")
		}
	}
	// A malformed address is a usage error; one that cannot be bound is a failure (open).
	if ff.metricsAddr != "" {
		if _, err := metrics.ListenAddr(ff.metricsAddr); err != nil {
			return err
		}
	}
	return nil
}

// open starts the metrics endpoint and opens a rotated output; check has passed.
func (ff *fleetFlags) open(f *flags, log *slog.Logger) (*fleet, error) {
	fl := &fleet{log: log}
	rotating := ff.maxSize > 0
	if ff.metricsAddr != "" {
		fl.metrics = metrics.New(version)
		srv, err := metrics.Serve(ff.metricsAddr, fl.metrics, log)
		if err != nil {
			return nil, err
		}
		fl.server = srv
		log.Info("serving metrics", "addr", srv.Addr().String(), "path", "/metrics")
	}
	if rotating && f.outputFile() {
		rw, err := rotate.Open(f.output, int64(ff.maxSize), ff.keep)
		if err != nil {
			fl.close()
			return nil, fmt.Errorf("open --output: %w", err)
		}
		w := record.NewWriter(rw)
		fl.records, fl.writer = rotatingRecords{Writer: w, rot: rw}, w
		fl.closeOut = func() error {
			closeRecords(w, log)
			return rw.Close() // fsyncs
		}
		log.Info("writing rotated JSON lines", "output", f.output, "max_size", ff.maxSize.String(), "keep", ff.keep)
	}
	return fl, nil
}

// stdoutRecords says whether records go to stdout when --output is not given: not in daemon
// mode, where stdout is a journal or a container log.
func (ff *fleetFlags) stdoutRecords() bool { return !ff.daemon }

// live adds the metrics to the session's live sink, which gets exactly the start, interval and
// summary records they are made of.
func (fl *fleet) live(view session.Sink) session.Sink {
	switch {
	case fl.metrics == nil:
		return view
	case view == nil:
		return fl.metrics
	}
	return tee{view, fl.metrics}
}

// close stops the metrics endpoint once the session has ended, letting scrapes finish.
func (fl *fleet) close() {
	if fl.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fl.server.Shutdown(ctx); err != nil {
		fl.log.Warn("metrics endpoint shutdown", "err", err)
	}
}

// tee writes every record to each sink.
type tee []session.Sink

func (t tee) each(write func(session.Sink) error) error {
	var errs []error
	for _, s := range t {
		if err := write(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t tee) Start(r *record.Start) error {
	return t.each(func(s session.Sink) error { return s.Start(r) })
}

func (t tee) Interval(r *record.Interval) error {
	return t.each(func(s session.Sink) error { return s.Interval(r) })
}

func (t tee) Drop(r *record.Drop) error {
	return t.each(func(s session.Sink) error { return s.Drop(r) })
}

func (t tee) Summary(r *record.Interval) error {
	return t.each(func(s session.Sink) error { return s.Summary(r) })
}

func (t tee) Flush() error { return t.each(session.Sink.Flush) }

// rotatingRecords writes records to a rotated file, and repeats the start record at the top of
// every file after a rotation: each file then says which kernel, CPUs and settings it was
// recorded with, even after the first one is deleted.
type rotatingRecords struct {
	*record.Writer
	rot *rotate.Writer
}

func (r rotatingRecords) Start(st *record.Start) error {
	if err := r.Writer.Start(st); err != nil {
		return err
	}
	var b bytes.Buffer
	w := record.NewWriter(&b)
	if w.Start(st) == nil && w.Flush() == nil {
		r.rot.SetHeader(b.Bytes())
	}
	return nil
}

// byteSize is a size flag: bytes, or with a K, M or G suffix (powers of 1024; "KiB", "MB"
// and the like are read the same).
type byteSize int64

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if v >= u.n && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("want a size such as 64M, 1G or 500000 (bytes)")
	}
	*b = byteSize(n * mult)
	return nil
}

func (b *byteSize) Type() string { return "size" }
