// SPDX-License-Identifier: Apache-2.0

// Command nicflood is the host's side of the kernel tests' real-NIC scenario
// (scripts/vmtest.sh): it sends a bounded, paced UDP flood to 127.0.0.1:PORT, which qemu's user
// network forwards to the guest's virtio-net NIC. It only ever sends to the loopback address.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/flood"
)

func main() {
	port := flag.Uint("port", 0, "UDP port on 127.0.0.1 that qemu forwards to the guest")
	count := flag.Uint64("count", 100_000, "datagrams to send at most")
	rate := flag.Uint64("rate", 20_000, "datagrams per second")
	dur := flag.Duration("duration", 5*time.Second, "send for at most this long")
	size := flag.Int("size", 64, "UDP payload bytes")
	cpu := flag.Int("cpu", 0, "host CPU the sending thread is pinned to")
	flag.Parse()
	if *port == 0 || *port > 65535 || *rate == 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: nicflood -port PORT [-count N] [-rate PPS] [-duration D] [-size BYTES] [-cpu N]")
		os.Exit(2)
	}
	r, err := run(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(*port)), *count, *rate, *dur, *size, *cpu)
	fmt.Printf("nicflood: sent %d datagrams of %d bytes to 127.0.0.1:%d in %s\n", r.Sent, *size, *port, r.Elapsed.Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nicflood:", err)
		os.Exit(1)
	}
}

// run sends count datagrams at rate per second, in a burst every 10 ms, for at most d.
func run(dst netip.AddrPort, count, rate uint64, d time.Duration, size, cpu int) (flood.Result, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return flood.Result{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	const tick = 10 * time.Millisecond
	burst := max(rate*uint64(tick)/uint64(time.Second), 1)
	start := time.Now()
	var total flood.Result
	t := time.NewTicker(tick)
	defer t.Stop()
	for total.Sent < count && ctx.Err() == nil {
		r, err := flood.Run(ctx, fd, dst, flood.Config{CPU: cpu, Size: size, Count: min(burst, count-total.Sent)})
		total.Sent += r.Sent
		if err != nil {
			return total, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	total.Elapsed = time.Since(start)
	return total, nil
}
