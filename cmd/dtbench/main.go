// SPDX-License-Identifier: Apache-2.0

// Command dtbench measures what droptrace costs the host it traces: loopback UDP floods pinned
// to one CPU, untraced and traced (droptrace aggregate-only, droptrace streaming every drop
// event, the bpftrace one-liner), interleaved in one run, reported as ratios to the untraced
// rate; then the scale section, droptrace's own cost on an idle host with 0, 100, 300 and
// 1000 network namespaces. `make bench` runs it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/bench"
)

func main() {
	var (
		cfg       bench.Config
		modes     string
		workloads string
		noBT      bool
		kmem      string
		scale     string
		scaleOnly bool
		scaleCfg  = bench.ScaleConfig{Interval: time.Second, Settle: 3 * time.Second}
	)
	pflag.StringVar(&cfg.Droptrace, "droptrace", "bin/droptrace", "the droptrace binary to measure")
	pflag.IntVar(&cfg.Rounds, "rounds", 7, "rounds per workload (each runs every mode once); the table shows medians")
	pflag.DurationVar(&cfg.Trial, "trial", 3*time.Second, "flood length of one trial")
	pflag.IntVar(&cfg.FloodCPU, "cpu", 0, "CPU the flood is pinned to")
	pflag.IntVar(&cfg.SinkCPU, "sink-cpu", 1, "CPU the deliver workload's reader is pinned to")
	pflag.IntVar(&cfg.Size, "size", 64, "UDP payload bytes")
	pflag.IntVar(&cfg.Batch, "batch", 32, "datagrams per sendmmsg call")
	pflag.StringVar(&modes, "modes", joinModes(bench.AllModes), "modes to compare (none is always included)")
	pflag.StringVar(&workloads, "workloads", "drop,deliver", "workloads: drop (closed port), deliver (read socket)")
	pflag.BoolVar(&cfg.ProgStats, "bpf-stats", true, "add one trial per tracer with BPF run time accounting, for ns per program run")
	pflag.BoolVar(&noBT, "no-bpftrace", false, "leave the bpftrace baseline out")
	pflag.StringVar(&kmem, "kmem", "", "print the maps' kernel memory for these numbers of possible CPUs (e.g. 2,64,256) and exit")
	pflag.StringVar(&scale, "scale", "0,100,300,1000", "scale section: droptrace's idle CPU and RSS with these numbers of network namespaces, created and removed by the benchmark (\"\" to skip)")
	pflag.DurationVar(&scaleCfg.Measure, "scale-time", 15*time.Second, "scale section: how long each number of namespaces is measured, after 3 s of start-up")
	pflag.BoolVar(&scaleOnly, "scale-only", false, "run only the scale section")
	pflag.Usage = func() {
		fmt.Fprintf(os.Stderr, "dtbench: droptrace's cost as ratios to an untraced flood (as root)\n\n  sudo dtbench --rounds 7\n\n")
		pflag.PrintDefaults()
	}
	pflag.Parse()
	if kmem != "" {
		cpus := counts("kmem", kmem, 1)
		if err := printKernelMemory(os.Stdout, cpus); err != nil {
			fmt.Fprintln(os.Stderr, "dtbench:", err)
			os.Exit(1)
		}
		return
	}
	cfg.Modes = []bench.Mode{bench.ModeNone}
	for _, m := range strings.Split(modes, ",") {
		if m = strings.TrimSpace(m); m != "" && m != string(bench.ModeNone) {
			cfg.Modes = append(cfg.Modes, bench.Mode(m))
		}
	}
	for _, w := range strings.Split(workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cfg.Workloads = append(cfg.Workloads, bench.Workload(w))
		}
	}
	if scale != "" {
		scaleCfg.Namespaces = counts("scale", scale, 0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !scaleOnly {
		if err := run(ctx, cfg, noBT); err != nil {
			fmt.Fprintln(os.Stderr, "dtbench:", err)
			os.Exit(1)
		}
	}
	if len(scaleCfg.Namespaces) > 0 {
		scaleCfg.Droptrace = cfg.Droptrace
		if err := runScale(ctx, scaleCfg); err != nil {
			fmt.Fprintln(os.Stderr, "dtbench:", err)
			os.Exit(1)
		}
	}
}

// counts parses a flag's comma-separated list of numbers, each at least least; exit 2 if not.
func counts(flag, list string, least int) []int {
	var ns []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < least {
			fmt.Fprintf(os.Stderr, "dtbench: --%s: %q is not a number of at least %d\n", flag, f, least)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	return ns
}

// runScale is the scale section: droptrace's idle cost with each number of namespaces.
func runScale(ctx context.Context, cfg bench.ScaleConfig) error {
	dir, err := os.MkdirTemp("", "dtbench-scale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Dir, cfg.Progress = dir, os.Stderr
	rows, err := bench.Scale(ctx, cfg)
	if len(rows) > 0 {
		bench.PrintScale(os.Stdout, cfg, rows)
	}
	// The maps' kernel memory per possible CPU follows in scripts/bench-maps.sh (make bench).
	return err
}

func joinModes(ms []bench.Mode) string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m))
	}
	return strings.Join(s, ",")
}

func run(ctx context.Context, cfg bench.Config, noBT bool) error {
	if _, err := os.Stat(cfg.Droptrace); err != nil {
		return fmt.Errorf("droptrace binary: %w (make build)", err)
	}
	wantBT := false
	for _, m := range cfg.Modes {
		wantBT = wantBT || m == bench.ModeBpftrace
	}
	if wantBT && !noBT {
		bt, err := bench.LookBpftrace()
		if err != nil {
			return fmt.Errorf("%w; or run with --no-bpftrace", err)
		}
		cfg.Bpftrace = bt
	}
	dir, err := os.MkdirTemp("", "dtbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.Dir = dir
	cfg.Progress = os.Stderr
	fmt.Fprintf(os.Stderr, "dtbench: %d rounds x %d modes x %d workloads of %s floods\n", cfg.Rounds, len(cfg.Modes), len(cfg.Workloads), cfg.Trial)
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Trials) > 0 {
		rep.Print(os.Stdout)
	}
	return err
}
