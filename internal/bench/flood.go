// SPDX-License-Identifier: Apache-2.0

// Package bench measures what droptrace costs the host it traces: loopback UDP floods pinned
// to one CPU, tracer runs (droptrace, the bpftrace one-liner), and the process statistics
// (CPU time, peak RSS) that the benchmark and the drop-storm test report.
//
// Traffic goes only to 127.0.0.1, and every flood is bounded by a duration and a count.
package bench

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/flood"
)

// Loopback is the only destination the floods send to.
var Loopback = [4]byte{127, 0, 0, 1}

// FloodConfig bounds one flood.
type FloodConfig struct {
	CPU      int           // the sending thread is pinned here
	Port     int           // destination port on 127.0.0.1
	Size     int           // UDP payload bytes (0: 64)
	Batch    int           // datagrams per sendmmsg call (0: 32)
	Duration time.Duration // stop after this long
	Max      uint64        // and after this many datagrams (0: 1<<40, i.e. only Duration)
	// Sent, when set, is kept up to date while the flood runs (for progress reports).
	Sent *atomic.Uint64
}

// FloodResult is what a flood did; its CPU is the datagrams' cost to the sending CPU.
type FloodResult = flood.Result

// Flood sends UDP datagrams to 127.0.0.1:Port from one thread pinned to CPU, in sendmmsg
// batches, until Duration, Max or ctx ends it. Batching keeps the sender's syscall overhead
// small, so the kernel's per-packet receive path (where the tracer runs) dominates: a tracer's
// cost per packet shows at its largest.
func Flood(ctx context.Context, c FloodConfig) (FloodResult, error) {
	if c.Duration <= 0 {
		return FloodResult{}, fmt.Errorf("flood to 127.0.0.1:%d: a duration is required (floods are bounded)", c.Port)
	}
	if c.Size <= 0 {
		c.Size = 64
	}
	if c.Max == 0 {
		c.Max = 1 << 40
	}
	if c.Port < 1 || c.Port > 65535 {
		return FloodResult{}, fmt.Errorf("flood to port %d: out of range", c.Port)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood socket: %w", err)
	}
	defer unix.Close(fd)
	dst := netip.AddrPortFrom(netip.AddrFrom4(Loopback), uint16(c.Port))
	return flood.Run(ctx, fd, dst, flood.Config{
		CPU: c.CPU, Size: c.Size, Batch: c.Batch, Count: c.Max, Duration: c.Duration, Sent: c.Sent,
	})
}

// ClosedPort returns a UDP port on 127.0.0.1 that nothing is bound to: the kernel picks a free
// one for a socket that is then closed. Another process could take it in between; the
// benchmark checks the drops it sees are NO_SOCKET ones.
func ClosedPort() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: Loopback}); err != nil {
		return 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, err
	}
	return sa.(*unix.SockaddrInet4).Port, nil
}

// Sink is a UDP socket on 127.0.0.1 that a thread pinned to one CPU reads as fast as it can,
// so that the packets sent to it are delivered rather than dropped.
type Sink = flood.Sink

// NewSink binds the sink with a receive buffer of rcvbuf bytes and starts its reader on cpu.
func NewSink(cpu, rcvbuf int) (*Sink, error) {
	return flood.NewSink(netip.AddrFrom4(Loopback), cpu, rcvbuf)
}
