// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/flood"
)

// socketIn opens a socket inside a namespace; the socket keeps that namespace afterwards.
func (l *Lab) socketIn(ns string, typ int) (int, error) {
	fd := -1
	err := l.inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("socket in %s: %w", ns, err)
	}
	return fd, nil
}

// Flood sends count UDP datagrams of size bytes from the sender namespace to ReceiverAddr:port,
// from a thread pinned to cpu, until all are sent or ctx ends; it returns how many were sent.
// ctx ending is not an error: compare the count. The datagrams carry no data worth reading.
func (l *Lab) Flood(ctx context.Context, cpu int, port uint16, count, size int) (int, error) {
	if count < 0 {
		return 0, fmt.Errorf("flood of %d datagrams: want count >= 0", count)
	}
	fd, err := l.socketIn(l.Sender, unix.SOCK_DGRAM)
	if err != nil {
		return 0, fmt.Errorf("sender socket: %w", err)
	}
	defer unix.Close(fd)
	// One datagram per call, as an application would send them.
	r, err := flood.Run(ctx, fd, netip.AddrPortFrom(l.ReceiverAddr, port), flood.Config{CPU: cpu, Size: size, Batch: 1, Count: uint64(count)})
	return int(r.Sent), err
}

// fdCloser closes a socket once, and may also be closed by Lab.Close.
type fdCloser struct {
	once sync.Once
	fd   int
	err  error
}

func (c *fdCloser) Close() error {
	c.once.Do(func() { c.err = unix.Close(c.fd) })
	return c.err
}

func (l *Lab) own(fd int) io.Closer {
	c := &fdCloser{fd: fd}
	l.onClose(c.Close)
	return c
}

// ListenUnread binds a UDP socket on ReceiverAddr:port in the receiver namespace with the
// smallest receive buffer the kernel allows, and never reads it: datagrams past the buffer are
// SOCKET_RCVBUFF drops (Udp RcvbufErrors). Closing it is optional: Close closes it too.
func (l *Lab) ListenUnread(port uint16) (io.Closer, error) {
	fd, err := l.socketIn(l.Receiver, unix.SOCK_DGRAM)
	if err != nil {
		return nil, fmt.Errorf("receiver socket: %w", err)
	}
	// The kernel raises this to its minimum (SOCK_MIN_RCVBUF, about two small skbs).
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVBUF: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: l.ReceiverAddr.As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind udp %s:%d: %w", l.ReceiverAddr, port, err)
	}
	return l.own(fd), nil
}

// ListenNoAccept listens on TCP ReceiverAddr:port in the receiver namespace with a backlog of
// 1 and never accepts: once two connections wait in its accept queue, further handshakes are
// dropped and counted as TcpExt ListenOverflows and ListenDrops. Close closes it too.
func (l *Lab) ListenNoAccept(port uint16) (io.Closer, error) {
	fd, err := l.socketIn(l.Receiver, unix.SOCK_STREAM)
	if err != nil {
		return nil, fmt.Errorf("receiver socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: l.ReceiverAddr.As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind tcp %s:%d: %w", l.ReceiverAddr, port, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen tcp %s:%d: %w", l.ReceiverAddr, port, err)
	}
	return l.own(fd), nil
}

// Connect starts n TCP connections from the sender namespace to ReceiverAddr:port without
// waiting for them; the closer (or Close) closes them all. Against ListenNoAccept, all but two
// stay in SYN-SENT, their SYNs dropped by the full listener and retried by the kernel.
func (l *Lab) Connect(port uint16, n int) (io.Closer, error) {
	var cs multiCloser
	var fds []int
	// One namespace entry for all: a socket keeps the namespace it was made in.
	err := l.inNetns(l.Sender, func() error {
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
		}
		return nil
	})
	for _, fd := range fds {
		cs = append(cs, l.own(fd))
	}
	if err != nil {
		cs.Close()
		return nil, fmt.Errorf("sender sockets: %w", err)
	}
	for _, fd := range fds {
		err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(port), Addr: l.ReceiverAddr.As4()})
		if err != nil && !errors.Is(err, unix.EINPROGRESS) {
			cs.Close()
			return nil, fmt.Errorf("connect tcp %s:%d: %w", l.ReceiverAddr, port, err)
		}
	}
	return cs, nil
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
