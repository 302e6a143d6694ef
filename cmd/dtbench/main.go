// SPDX-License-Identifier: Apache-2.0

// Command dtbench measures what droptrace costs the host it traces: loopback UDP floods pinned
// to one CPU, untraced and traced (droptrace aggregate-only, droptrace streaming every drop
// event, the bpftrace one-liner), interleaved in one run, reported as ratios to the untraced
// rate. `make bench` runs it.
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
	pflag.Usage = func() {
		fmt.Fprintf(os.Stderr, "dtbench: droptrace's cost as ratios to an untraced flood (as root)\n\n  sudo dtbench --rounds 7\n\n")
		pflag.PrintDefaults()
	}
	pflag.Parse()
	if kmem != "" {
		var cpus []int
		for _, f := range strings.Split(kmem, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "dtbench: --kmem: %q is not a number of CPUs\n", f)
				os.Exit(2)
			}
			cpus = append(cpus, n)
		}
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
	if err := run(cfg, noBT); err != nil {
		fmt.Fprintln(os.Stderr, "dtbench:", err)
		os.Exit(1)
	}
}

func joinModes(ms []bench.Mode) string {
	var s []string
	for _, m := range ms {
		s = append(s, string(m))
	}
	return strings.Join(s, ",")
}

func run(cfg bench.Config, noBT bool) error {
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "dtbench: %d rounds x %d modes x %d workloads of %s floods\n", cfg.Rounds, len(cfg.Modes), len(cfg.Workloads), cfg.Trial)
	rep, err := bench.Run(ctx, cfg)
	if rep != nil && len(rep.Trials) > 0 {
		rep.Print(os.Stdout)
	}
	return err
}
