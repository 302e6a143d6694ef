// SPDX-License-Identifier: Apache-2.0

// Command droptrace finds the packet loss that interface counters never show: it attributes
// every kernel drop to its reason, CPU, location, device and namespace, accounts the NET_RX
// softirq per CPU, and reconciles both with /proc/net/softnet_stat and the SNMP counters.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/doctor"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/session"
	"github.com/droptrace/droptrace/internal/view"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `droptrace: find the packet loss that ip -s link, ethtool -S and sar never show.

Usage:
  droptrace [flags]            trace drops and NET_RX per CPU (as root)
  droptrace doctor [--json]    what this kernel supports and what is degraded
  droptrace analyze FILE.jsonl report on recordings, compare them, draw a chart (no root; --help)
  droptrace version

Examples:
  sudo droptrace                                     # live per-CPU view, Ctrl-C ends
  sudo droptrace --duration 30s --output burst.jsonl # record a burst for later analysis
  sudo droptrace --events --max-event-rate 2000 --output - | jq 'select(.type=="drop")'
  sudo droptrace --reason NO_SOCKET --port 53 --output drops.jsonl  # only those drops as events
  sudo droptrace --duration 30s --pcap drops.pcapng  # the dropped packets, reason in each comment

Flags:
`

// flags are the tracing session's options, bound in one place.
type flags struct {
	duration     time.Duration
	interval     time.Duration
	output       string
	events       bool
	maxEventRate uint32
	ringBytes    uint32
	readyFile    string
	countersOnly bool
	tracepoint   bool
	live         string
	logLevel     string
	fleet        fleetFlags  // daemon.go: --daemon, --metrics-addr, --output-max-size
	pods         podFlags    // pods.go: --runtime-state-dir
	filters      filterFlags // filters.go: --reason, --netns, --iface, --port, --proto
	pcap         pcapFlags   // pcap.go: --pcap, --snaplen
}

func (f *flags) set(fs *pflag.FlagSet) {
	fs.DurationVar(&f.duration, "duration", 0, "stop after this long, 100ms to 8784h (0: until Ctrl-C, SIGTERM or, without --daemon, SIGHUP)")
	fs.DurationVar(&f.interval, "interval", time.Second, "how often to sample, reconcile and emit an interval record, 50ms to 1h")
	fs.StringVar(&f.output, "output", "", "write JSON lines to this file ('-' for stdout); default: stdout when it is not a terminal")
	fs.BoolVar(&f.events, "events", false, "also stream one 'drop' record per dropped packet (rate-limited per CPU)")
	fs.Uint32Var(&f.maxEventRate, "max-event-rate", 10000, "drop events per second per CPU, enforced in BPF, up to 1000000 (0: unlimited); the rest are counted in lost_events")
	fs.Uint32Var(&f.ringBytes, "ring-buffer-size", 4<<20, "bytes of the drop event ring buffer: a power of two from 4096 to 67108864 (64 MiB) of locked kernel memory")
	fs.StringVar(&f.readyFile, "ready-file", "", "write this file (our pid) once everything is attached and the first counters are read; removed at start if stale and at exit")
	fs.BoolVar(&f.countersOnly, "counters-only", false, "do not load BPF: poll softnet_stat, softirqs and snmp only")
	fs.BoolVar(&f.tracepoint, "tracepoint", false, "attach classic tracepoints instead of tp_btf")
	fs.StringVar(&f.live, "live", "auto", "live per-CPU view on the terminal: auto, on or off")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	f.fleet.set(fs)
	f.pods.set(fs)
	f.filters.set(fs)
	f.pcap.set(fs)
}

// newFlagSet binds f to a flag set that writes its usage to stderr.
func newFlagSet(f *flags, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("droptrace", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	f.set(fs)
	return fs
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			printVersion(stdout)
			return 0
		case manpageCommand:
			return runManpage(args[1:], stdout, stderr)
		case "doctor":
			return runDoctor(args[1:], stdout, stderr)
		case "analyze":
			return runAnalyze(args[1:], stdout, stderr)
		}
	}
	var f flags
	fs := newFlagSet(&f, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "droptrace: %v (see droptrace --help)\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "droptrace: unexpected argument %q (subcommands: doctor, analyze, version)\n", fs.Arg(0))
		return 2
	}
	if err := errors.Join(f.validateBounds(), f.resolveFilters(f.filterEnv())); err != nil {
		// One line per flag out of range, each prefixed like every other message.
		fmt.Fprintf(stderr, "droptrace: %s (see droptrace --help)\n", strings.ReplaceAll(err.Error(), "\n", "\ndroptrace: "))
		return 2
	}
	log, err := newLogger(stderr, f.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "droptrace:", err)
		return 2
	}
	if err := trace(f, stdout, log); err != nil {
		// Plain text, not a log line: this is what the user reads when droptrace gives up.
		fmt.Fprintln(stderr, "droptrace:", err)
		return exitCode(err)
	}
	return 0
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// termWidth is the terminal's width in columns, 0 when unknown (the view then uses 120).
func termWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func trace(f flags, stdout io.Writer, log *slog.Logger) error {
	outFile, _ := stdout.(*os.File)
	tty := outFile != nil && isTerminal(outFile)
	var width int
	if tty {
		width = termWidth(outFile)
	}
	cfg := session.Config{
		Interval: f.interval, Duration: f.duration, Events: f.events || f.pcap.path != "", MaxEventRate: f.maxEventRate,
		RingBufferBytes: f.ringBytes, ForceTracepoint: f.tracepoint, CountersOnly: f.countersOnly,
		Filter: f.filters.resolved, Version: version, Log: log,
	}
	cfg.RuntimeStateDirs, _ = f.pods.parse() // validated with the bounds
	if err := checkOutputs(&f, tty); err != nil {
		return err
	}
	var ready *readyFile
	if f.readyFile != "" {
		r, err := prepareReadyFile(f.readyFile)
		if err != nil {
			return err
		}
		ready = r
		defer func() {
			if err := ready.remove(); err != nil {
				log.Warn("remove ready file", "err", err)
			}
		}()
	}
	fl, err := f.fleet.open(&f, log)
	if err != nil {
		return err
	}
	defer fl.close()
	var pk *packets
	if f.pcap.path != "" {
		if pk, err = f.pcap.open(&f, stdout, log); err != nil {
			return err
		}
		cfg.Packets, cfg.Snaplen = pk.w, f.pcap.snaplen
	}
	var closeOut func() error
	var records *record.Writer // whose lost records decide the exit status
	switch {
	case fl.records != nil:
		cfg.Records, closeOut, records = fl.records, fl.closeOut, fl.writer
	case f.output == "-" || (f.output == "" && !tty && f.fleet.stdoutRecords() && !f.pcap.stdout()):
		records = record.NewWriter(stdout)
		cfg.Records = records
		closeOut = func() error { closeRecords(records, log); return nil }
		tty = false // stdout carries data
	case f.output != "":
		file, err := openOutput(f.output)
		if err != nil {
			return err
		}
		w := record.NewWriter(file)
		cfg.Records, records = w, w
		closeOut = func() error { closeRecords(w, log); return syncClose(file, f.output) }
	}
	switch f.live {
	case "on":
		cfg.Live = view.New(stdout, view.Options{Color: tty, Width: width})
	case "auto":
		if tty {
			cfg.Live = view.New(stdout, view.Options{Color: true, Width: width})
		}
	}
	if fl.metrics != nil && records != nil {
		fl.metrics.CountLostRecords(func() record.Counts { _, lost := records.Counts(); return lost })
	}
	cfg.Live = fl.live(cfg.Live)
	if cfg.Records == nil && cfg.Live == nil && cfg.Packets == nil {
		return errors.New("nothing to write: give --output FILE or --live on") // checkOutputs missed a case
	}
	switch {
	case ready == nil:
	case cfg.Records != nil:
		cfg.Records = &readySink{Sink: cfg.Records, ready: ready}
	default:
		cfg.Live = &readySink{Sink: cfg.Live, ready: ready, atStart: true}
	}

	ctx, stop := signal.NotifyContext(context.Background(), endSignals(f.fleet.daemon)...)
	defer stop()
	capProcs()
	_, err = session.Run(ctx, cfg)
	if closeOut != nil {
		if cerr := closeOut(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if pk != nil {
		if cerr := pk.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err == nil && records != nil {
		err = lostError(records, outputName(f.output))
	}
	if err == nil && pk != nil {
		err = pk.lostError()
	}
	return err
}

// outputName names where records went, for messages.
func outputName(output string) string {
	if output == "" || output == "-" {
		return "stdout"
	}
	return output
}

// endSignals are the signals that end a session cleanly: the last interval and the summary
// are written and the output flushed before exit 0. SIGHUP is one of them when droptrace runs
// in a terminal, where it means the terminal (an ssh session) went away; left to its default
// action it would kill droptrace and lose the summary. A daemon outlives the terminal it was
// started from, so it ignores SIGHUP.
func endSignals(daemon bool) []os.Signal {
	if daemon {
		signal.Ignore(syscall.SIGHUP)
		return []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
}

func runDoctor(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("droptrace doctor", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the probes as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	rep := doctor.Run(hostfs.Host())
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.Print(stdout)
	}
	if !rep.CanTrace {
		return 1
	}
	return 0
}
