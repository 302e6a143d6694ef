// SPDX-License-Identifier: Apache-2.0

// Package bench measures what droptrace costs the host it traces: loopback UDP floods pinned
// to one CPU, tracer runs (droptrace, the bpftrace one-liner), and the process statistics
// (CPU time, peak RSS) that the benchmark and the drop-storm test report.
//
// Traffic goes only to 127.0.0.1, and every flood is bounded by a duration and a count.
package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Loopback is the only destination the floods send to.
var Loopback = [4]byte{127, 0, 0, 1}

// FloodConfig bounds one flood.
type FloodConfig struct {
	CPU      int           // the sending thread is pinned here
	Port     int           // destination port on 127.0.0.1
	Size     int           // UDP payload bytes
	Batch    int           // datagrams per sendmmsg call
	Duration time.Duration // stop after this long
	Max      uint64        // and after this many datagrams (0: 1<<40, i.e. only Duration)
	// Sent, when set, is kept up to date while the flood runs (for progress reports).
	Sent *atomic.Uint64
}

// FloodResult is what a flood did.
type FloodResult struct {
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
func (r FloodResult) PPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Sent) / r.Elapsed.Seconds()
}

// Flood sends UDP datagrams to 127.0.0.1:Port from one thread pinned to CPU, in sendmmsg
// batches, until Duration, Max or ctx ends it. Batching keeps the sender's syscall overhead
// small, so the kernel's per-packet receive path (where the tracer runs) dominates: a tracer's
// cost per packet shows at its largest.
func Flood(ctx context.Context, c FloodConfig) (FloodResult, error) {
	if c.Duration <= 0 {
		return FloodResult{}, errors.New("flood: a duration is required (floods are bounded)")
	}
	if c.Size <= 0 {
		c.Size = 64
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	if c.Max == 0 {
		c.Max = 1 << 40
	}
	type result struct {
		r   FloodResult
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread's affinity changes, so it is never handed back to the runtime: the
		// goroutine exits locked and Go discards the thread.
		runtime.LockOSThread()
		r, err := flood(ctx, c)
		res <- result{r, err}
	}()
	r := <-res
	return r.r, r.err
}

func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

func flood(ctx context.Context, c FloodConfig) (FloodResult, error) {
	if err := pin(c.CPU); err != nil {
		return FloodResult{}, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return FloodResult{}, fmt.Errorf("flood socket: %w", err)
	}
	defer unix.Close(fd)
	// Not connected: a connected socket learns each ICMP port unreachable as ECONNREFUSED,
	// which cuts a sendmmsg batch short; every message names its destination instead.
	to := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: Loopback}
	to.Port = uint16(c.Port>>8) | uint16(c.Port&0xff)<<8 // network byte order
	payload := make([]byte, c.Size)
	iov := make([]unix.Iovec, c.Batch)
	msgs := make([]mmsghdr, c.Batch)
	for i := range msgs {
		iov[i].Base = &payload[0]
		iov[i].SetLen(len(payload))
		msgs[i].hdr.Name = (*byte)(unsafe.Pointer(&to))
		msgs[i].hdr.Namelen = unix.SizeofSockaddrInet4
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.SetIovlen(1)
	}
	cpu0, err := threadCPU()
	if err != nil {
		return FloodResult{}, err
	}
	start := time.Now()
	end := start.Add(c.Duration)
	var sent uint64
	for sent < c.Max {
		if ctx.Err() != nil || !time.Now().Before(end) {
			break
		}
		want := c.Batch
		if left := c.Max - sent; left < uint64(want) {
			want = int(left)
		}
		n, err := sendmmsg(fd, msgs[:want])
		switch {
		case err == nil:
			sent += uint64(n)
			if c.Sent != nil {
				c.Sent.Store(sent)
			}
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return FloodResult{Sent: sent, Elapsed: time.Since(start)}, fmt.Errorf("sendmmsg to 127.0.0.1:%d: %w", c.Port, err)
		}
	}
	r := FloodResult{Sent: sent, Elapsed: time.Since(start)}
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

// mmsghdr is struct mmsghdr (x/sys has the Msghdr but not the mmsghdr wrapper).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

func sendmmsg(fd int, msgs []mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), 0, 0, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

func recvmmsg(fd int, msgs []mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
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
type Sink struct {
	Port     int
	fd       int
	received atomic.Uint64
	done     chan struct{}
	stop     atomic.Bool
	efd      int
}

// NewSink binds the socket with a receive buffer of rcvbuf bytes (SO_RCVBUFFORCE: root may
// exceed net.core.rmem_max, and no sysctl is changed) and starts the reader on cpu.
func NewSink(cpu, rcvbuf int) (*Sink, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: Loopback}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	efd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.EpollCtl(efd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		unix.Close(efd)
		return nil, err
	}
	s := &Sink{Port: sa.(*unix.SockaddrInet4).Port, fd: fd, efd: efd, done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer close(s.done)
		if err := pin(cpu); err != nil {
			errc <- err
			return
		}
		errc <- nil
		s.read()
	}()
	if err := <-errc; err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sink) read() {
	const batch = 64
	buf := make([]byte, batch*2048)
	iov := make([]unix.Iovec, batch)
	msgs := make([]mmsghdr, batch)
	for i := range msgs {
		iov[i].Base = &buf[i*2048]
		iov[i].SetLen(2048)
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.SetIovlen(1)
	}
	ev := make([]unix.EpollEvent, 1)
	for !s.stop.Load() {
		n, err := recvmmsg(s.fd, msgs)
		if n > 0 {
			s.received.Add(uint64(n))
			continue
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return
		}
		// Wait briefly so Close is noticed without a busy loop when idle.
		unix.EpollWait(s.efd, ev, 50)
	}
}

// Received is how many datagrams the reader has taken off the socket.
func (s *Sink) Received() uint64 { return s.received.Load() }

// Close stops the reader and closes the socket.
func (s *Sink) Close() error {
	s.stop.Store(true)
	<-s.done
	unix.Close(s.efd)
	return unix.Close(s.fd)
}
