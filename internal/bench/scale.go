// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ScaleConfig is the scale section: droptrace's own cost on an idle host with N network
// namespaces, for each N.
type ScaleConfig struct {
	Droptrace  string
	Dir        string
	Namespaces []int
	Interval   time.Duration // droptrace's --interval
	Settle     time.Duration // start-up left out of the measurement
	Measure    time.Duration
	Progress   io.Writer
}

// ScaleRow is droptrace's cost with one number of idle namespaces.
type ScaleRow struct {
	Namespaces int
	CPU        float64 // user+system time over the measurement, as a share of one CPU
	PeakRSS    uint64  // VmHWM, start-up included
}

// scalePrefix names the benchmark's namespaces; the pid keeps two runs apart, and only names
// with it are ever deleted.
func scalePrefix() string { return fmt.Sprintf("dtscale%d-", os.Getpid()) }

// Scale measures each number of namespaces in turn: it creates them (`ip netns add`, lo up, no
// traffic), runs droptrace, and deletes them, failure or cancellation included.
func Scale(ctx context.Context, cfg ScaleConfig) ([]ScaleRow, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the scale benchmark needs root (network namespaces, BPF)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("the scale benchmark creates namespaces with ip (iproute2): %w", err)
	}
	var rows []ScaleRow
	for _, n := range cfg.Namespaces {
		row, err := scaleOne(ctx, cfg, n)
		if err != nil {
			return rows, fmt.Errorf("%d namespaces: %w", n, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func scaleOne(ctx context.Context, cfg ScaleConfig, n int) (row ScaleRow, err error) {
	row.Namespaces = n
	fmt.Fprintf(progressOr(cfg.Progress), "scale: %d namespaces\n", n)
	names, err := addNamespaces(ctx, scalePrefix(), n)
	defer func() {
		if derr := delNamespaces(names); derr != nil && err == nil {
			err = derr
		}
	}()
	if err != nil {
		return row, err
	}
	p, err := StartDroptrace(ctx, cfg.Droptrace, cfg.Dir, "--interval", cfg.Interval.String())
	if err != nil {
		return row, err
	}
	defer func() {
		e, serr := p.Stop(30 * time.Second)
		row.PeakRSS = e.PeakRSS
		if serr != nil && err == nil {
			err = serr
		}
	}()
	if err := sleepCtx(ctx, cfg.Settle); err != nil {
		return row, err
	}
	c0, err := CPUTime(p.Pid())
	if err != nil {
		return row, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, cfg.Measure); err != nil {
		return row, err
	}
	c1, err := CPUTime(p.Pid())
	if err != nil {
		return row, err
	}
	row.CPU = float64(c1-c0) / float64(time.Since(start))
	return row, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// addNamespaces creates n namespaces named prefix0.. with lo up; it returns those created,
// to be deleted, even when it fails.
func addNamespaces(ctx context.Context, prefix string, n int) ([]string, error) {
	var names []string
	for i := range n {
		if err := ctx.Err(); err != nil {
			return names, err
		}
		name := fmt.Sprintf("%s%d", prefix, i)
		if err := ip("netns", "add", name); err != nil {
			return names, err
		}
		names = append(names, name)
		if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
			return names, err
		}
	}
	return names, nil
}

// delNamespaces deletes the namespaces by name, each one whatever happened to the others.
func delNamespaces(names []string) error {
	var errs []error
	for _, name := range names {
		if err := ip("netns", "del", name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PrintScale prints the scale section's table.
func PrintScale(w io.Writer, cfg ScaleConfig, rows []ScaleRow) {
	fmt.Fprintf(w, "\nscale: idle network namespaces (ip netns, lo up, no traffic); droptrace --interval %s, CPU over %s after %s of start-up, peak RSS start-up included\n",
		cfg.Interval, cfg.Measure, cfg.Settle)
	fmt.Fprintf(w, "| namespaces | droptrace CPU | peak RSS |\n|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %.1f%% | %.1f MiB |\n", r.Namespaces, 100*r.CPU, float64(r.PeakRSS)/(1<<20))
	}
}
