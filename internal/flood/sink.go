// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sink is a UDP socket that a thread pinned to one CPU reads as fast as it can, so that the
// datagrams a flood sends to it are delivered rather than dropped.
type Sink struct {
	Port     int
	fd, efd  int
	received atomic.Uint64
	stop     atomic.Bool
	done     chan struct{}
	err      error // why the reader ended early; read after done
}

// NewSink binds a socket to addr on a port the kernel picks, with a receive buffer of rcvbuf
// bytes (SO_RCVBUFFORCE: root may exceed net.core.rmem_max, and no sysctl is changed), and
// starts the reader on cpu.
func NewSink(addr netip.Addr, cpu, rcvbuf int) (*Sink, error) {
	if !addr.Is4() {
		return nil, fmt.Errorf("sink on %s: want an IPv4 address", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sink socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind sink to %s: %w", addr, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sink address: %w", err)
	}
	efd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sink epoll: %w", err)
	}
	if err := unix.EpollCtl(efd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		unix.Close(efd)
		return nil, fmt.Errorf("sink epoll: %w", err)
	}
	s := &Sink{Port: sa.(*unix.SockaddrInet4).Port, fd: fd, efd: efd, done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		defer close(s.done)
		s.err = OnCPU(cpu, func() error {
			close(started)
			s.read()
			return nil
		})
	}()
	select {
	case <-started:
		return s, nil
	case <-s.done:
		err := s.err
		s.Close()
		return nil, fmt.Errorf("sink reader: %w", err)
	}
}

func (s *Sink) read() {
	const batch, size = 64, 2048
	buf := make([]byte, batch*size)
	iov := make([]unix.Iovec, batch)
	msgs := make([]mmsghdr, batch)
	for i := range msgs {
		iov[i].Base = &buf[i*size]
		iov[i].SetLen(size)
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

func recvmmsg(fd int, msgs []mmsghdr) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}
