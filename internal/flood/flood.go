// SPDX-License-Identifier: Apache-2.0

// Package flood sends bounded UDP floods from a thread pinned to one CPU, for the benchmark and
// the privileged test scenarios. A flood stops at its count, its duration or its context,
// whichever comes first, even while every send fails because the send buffer is full.
package flood

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config bounds one flood.
type Config struct {
	CPU      int           // the sending thread is pinned here
	Size     int           // UDP payload bytes, 1-65507
	Batch    int           // datagrams per sendmmsg call (0: 32)
	Count    uint64        // stop after this many datagrams
	Duration time.Duration // and after this long (0: only Count and the context bound it)
	// Sent, when set, is kept up to date while the flood runs (for progress reports).
	Sent *atomic.Uint64
}

// Result is what a flood did.
type Result struct {
	Sent    uint64
	Elapsed time.Duration
	// CPU is the sending thread's CPU time. Without CONFIG_IRQ_TIME_ACCOUNTING the kernel
	// charges the softirq work a thread runs on its way out of the send (loopback receive,
	// the drop, every tracepoint program) to that thread, and with paravirt steal accounting
	// none of the time the hypervisor or other tasks took: datagrams per CPU second is the
	// rate the CPU would sustain had it been the flood's alone.
	CPU time.Duration
}

// PPS is datagrams per second.
func (r Result) PPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Run sends c.Count datagrams of c.Size bytes through the UDP socket fd (of the caller's
// choosing, so of its namespace) to the IPv4 address dst, from a thread pinned to c.CPU. The
// context ending is not an error: compare Result.Sent with the count. Every message names its
// destination, so fd needs no connect, and a connected socket's ECONNREFUSED (an ICMP port
// unreachable from an earlier datagram) never cuts a batch short.
func Run(ctx context.Context, fd int, dst netip.AddrPort, c Config) (Result, error) {
	if c.Size < 1 || c.Size > 65507 {
		return Result{}, fmt.Errorf("flood of %d-byte datagrams: want 1-65507 bytes", c.Size)
	}
	if !dst.Addr().Is4() {
		return Result{}, fmt.Errorf("flood to %s: want an IPv4 address", dst)
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	to := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().As4()}
	port := dst.Port()
	to.Port = port>>8 | port<<8 // network byte order
	var r Result
	err := OnCPU(c.CPU, func() error {
		var err error
		r, err = send(ctx, fd, newBatch(&to, c.Size, c.Batch), c)
		return err
	})
	if err != nil {
		return r, fmt.Errorf("flood %s from CPU %d: %w", dst, c.CPU, err)
	}
	return r, nil
}

// mmsghdr is struct mmsghdr (x/sys has the Msghdr but not the mmsghdr wrapper).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// newBatch builds batch messages of one shared payload to one destination (nil: the socket's
// peer).
func newBatch(to *unix.RawSockaddrInet4, size, batch int) []mmsghdr {
	payload := make([]byte, size)
	iov := make([]unix.Iovec, batch)
	msgs := make([]mmsghdr, batch)
	for i := range msgs {
		iov[i].Base = &payload[0]
		iov[i].SetLen(len(payload))
		if to != nil {
			msgs[i].hdr.Name = (*byte)(unsafe.Pointer(to))
			msgs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		}
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.SetIovlen(1)
	}
	return msgs
}

// send runs on the pinned thread.
func send(ctx context.Context, fd int, msgs []mmsghdr, c Config) (Result, error) {
	cpu0, err := threadCPU()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	var end time.Time
	if c.Duration > 0 {
		end = start.Add(c.Duration)
	}
	var sent uint64
	for sent < c.Count {
		// Checked before every call, not every k: a full send buffer makes sends fail without
		// sent moving, and the flood must still stop on time.
		if ctx.Err() != nil || !end.IsZero() && !time.Now().Before(end) {
			break
		}
		want := min(uint64(len(msgs)), c.Count-sent)
		n, err := sendmmsg(fd, msgs[:want])
		switch {
		case err == nil:
			sent += uint64(n)
			if c.Sent != nil {
				c.Sent.Store(sent)
			}
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EINTR):
			// The send buffer is full of datagrams the device has not taken yet: try again.
		default:
			return Result{Sent: sent, Elapsed: time.Since(start)}, fmt.Errorf("sendmmsg: %w", err)
		}
	}
	r := Result{Sent: sent, Elapsed: time.Since(start)}
	cpu1, err := threadCPU()
	if err != nil {
		return r, err
	}
	r.CPU = cpu1 - cpu0
	return r, nil
}

func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("thread CPU clock: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}

// sendmmsg never blocks (MSG_DONTWAIT), so a full send buffer returns EAGAIN and the bounds
// are checked again.
func sendmmsg(fd int, msgs []mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}
