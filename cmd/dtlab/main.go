// SPDX-License-Identifier: Apache-2.0

// Command dtlab reproduces hidden packet loss on this machine, for trying droptrace: two
// network namespaces joined by veth, RPS on the receiver steered to another CPU, a tiny
// netdev_max_backlog and netdev_budget, and bursts of UDP (to a socket that is never read, and
// to a closed port). Everything is undone on exit, Ctrl-C included.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/netlab"
)

func main() {
	duration := pflag.Duration("duration", 30*time.Second, "how long to send bursts")
	burst := pflag.Int("burst", 50000, "datagrams per burst (one burst per second)")
	backlog := pflag.String("max-backlog", "10", "net.core.netdev_max_backlog during the run")
	budget := pflag.String("budget", "4", "net.core.netdev_budget during the run")
	pflag.Usage = func() {
		fmt.Fprintf(os.Stderr, "dtlab: reproduce hidden packet loss in throwaway namespaces (as root)\n\n  sudo dtlab --duration 30s   # and in another terminal: sudo droptrace\n\n")
		pflag.PrintDefaults()
	}
	pflag.Parse()
	if err := run(*duration, *burst, *backlog, *budget); err != nil {
		fmt.Fprintln(os.Stderr, "dtlab:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, burst int, backlog, budget string) error {
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("needs two CPUs: RPS steers the receiver to the CPU the sender is not on")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	netlab.CleanupStale("dtlab-")
	lab, err := netlab.New("dtlab-")
	if err != nil {
		return err
	}
	defer func() {
		if err := lab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "dtlab: cleanup:", err)
		}
	}()
	if err := lab.SetRPS(1); err != nil {
		return err
	}
	if err := lab.SetSysctl("net.core.netdev_max_backlog", backlog); err != nil {
		return err
	}
	if err := lab.SetSysctl("net.core.netdev_budget", budget); err != nil {
		return err
	}
	sink, err := lab.ListenUnread(9000)
	if err != nil {
		return err
	}
	defer sink.Close()
	fmt.Printf("dtlab: %s (%s) -> %s (%s, RPS to CPU 1); netdev_max_backlog=%s netdev_budget=%s; Ctrl-C stops\n",
		lab.Sender, lab.SenderAddr, lab.Receiver, lab.ReceiverAddr, backlog, budget)
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		n, err := lab.Flood(ctx, 0, 9000, burst, 64)
		if err != nil {
			return err
		}
		if _, err := lab.Flood(ctx, 0, 9001, 100, 64); err != nil {
			return err
		}
		fmt.Printf("dtlab: sent %d datagrams to a socket that is never read, 100 to a closed port\n", n)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
