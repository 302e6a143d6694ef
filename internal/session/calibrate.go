// SPDX-License-Identifier: Apache-2.0

package session

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/tracer"
)

// calibrateWait bounds the wait for one provoked drop: loopback delivers it in the next
// softirq, but a loaded host can delay that.
const calibrateWait = time.Second

// calibrate learns, on a kernel without drop reasons, the call sites of functions that free
// for several causes (locreason.Table): in a private network namespace it sends a datagram to
// a closed port (NO_SOCKET) and datagrams to a socket whose receive buffer is full
// (SOCKET_RCVBUFF), over IPv4 and IPv6, and records where each was freed. It runs before the
// first sample, so its drops are in no interval. With unspecified, only drops the kernel
// freed without a reason (code 0) teach a call site.
func calibrate(tr *tracer.Tracer, locs *locreason.Namer, unspecified bool, log *slog.Logger) {
	// The private namespace dies with its last socket.
	if err := netns.DoUnshared(func() error { return calibrateHere(tr, locs, unspecified) }); err != nil {
		log.Warn("drop location calibration incomplete: call sites it did not learn keep their function's name", "err", err)
	}
}

// calibrateHere runs in the private namespace.
func calibrateHere(tr *tracer.Tracer, locs *locreason.Namer, unspecified bool) error {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return fmt.Errorf("stat own network namespace: %w", err)
	}
	netns := uint32(st.Ino)
	if err := loUp(); err != nil {
		return err
	}
	var errs []error
	for _, addr := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		if err := learn(tr, locs, netns, unspecified, "NO_SOCKET", func() (func(), error) { return sendClosed(addr) }); err != nil {
			errs = append(errs, fmt.Errorf("%s NO_SOCKET: %w", addr, err))
		}
		if err := learn(tr, locs, netns, unspecified, "SOCKET_RCVBUFF", func() (func(), error) { return overflow(addr) }); err != nil {
			errs = append(errs, fmt.Errorf("%s SOCKET_RCVBUFF: %w", addr, err))
		}
	}
	return errors.Join(errs...)
}

// learn runs provoke and learns the call sites where UDP drops in netns appeared, except those
// of functions the table already names (a backlog drop on a loaded host is no clue). With
// unspecified, only drops without a reason (code 0: NOT_SPECIFIED where the enum is short)
// teach a call site: a drop the kernel named needs no location, and ends the step.
// provoke's sockets stay open until then: a receiver closed before the softirq delivered to
// it would turn a full-buffer drop into a no-socket one.
func learn(tr *tracer.Tracer, locs *locreason.Namer, netns uint32, unspecified bool, reason string, provoke func() (func(), error)) error {
	before, namedBefore, err := udpDrops(tr, netns, unspecified)
	if err != nil {
		return err
	}
	closeAll, err := provoke()
	if err != nil {
		return err
	}
	defer closeAll()
	for deadline := time.Now().Add(calibrateWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		after, named, err := udpDrops(tr, netns, unspecified)
		if err != nil {
			return err
		}
		found := named > namedBefore
		for loc, n := range after {
			if n > before[loc] && locreason.Table[locs.Function(loc)].Reason == "" {
				locs.Learn(loc, reason)
				found = true
			}
		}
		if found {
			return nil
		}
	}
	return errors.New("no drop seen")
}

// udpDrops are the UDP drops in netns so far, by location; with unspecified only those without
// a reason, and how many with one.
func udpDrops(tr *tracer.Tracer, netns uint32, unspecified bool) (map[uint64]uint64, uint64, error) {
	counts, err := tr.ReadDrops()
	if err != nil {
		return nil, 0, fmt.Errorf("read drops: %w", err)
	}
	out := map[uint64]uint64{}
	var named uint64
	for _, c := range counts {
		if c.Key.Netns == netns && c.Key.L4 == unix.IPPROTO_UDP {
			for _, n := range c.PerCPU {
				if unspecified && c.Key.Reason != 0 {
					named += n
					continue
				}
				out[c.Key.Location] += n
			}
		}
	}
	return out, named, nil
}

// loUp brings the namespace's loopback up.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// udpSocket returns a UDP socket bound to addr on an ephemeral port, and the port.
func udpSocket(addr netip.Addr) (int, int, error) {
	family := unix.AF_INET
	if addr.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	if err := unix.Bind(fd, sockaddr(addr, 0)); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("bind %s: %w", addr, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("getsockname: %w", err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		return fd, a.Port, nil
	case *unix.SockaddrInet6:
		return fd, a.Port, nil
	}
	unix.Close(fd)
	return -1, 0, errors.New("getsockname: not an inet address")
}

func sockaddr(addr netip.Addr, port int) unix.Sockaddr {
	if addr.Is6() {
		return &unix.SockaddrInet6{Addr: addr.As16(), Port: port}
	}
	return &unix.SockaddrInet4{Addr: addr.As4(), Port: port}
}

// send sends n datagrams of size bytes from fd to addr:port.
func send(fd int, addr netip.Addr, port, n, size int) error {
	to := sockaddr(addr, port)
	buf := make([]byte, size)
	for range n {
		if err := unix.Sendto(fd, buf, 0, to); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("send to %s port %d: %w", addr, port, err)
		}
	}
	return nil
}

// sendClosed sends one datagram to a port that was just closed.
func sendClosed(addr netip.Addr) (func(), error) {
	fd, port, err := udpSocket(addr)
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	from, _, err := udpSocket(addr)
	if err != nil {
		return nil, err
	}
	closeAll := func() { unix.Close(from) }
	if err := send(from, addr, port, 1, 8); err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}

// overflow fills a socket with the smallest receive buffer: its first datagram is queued, the
// next are refused with -ENOMEM.
func overflow(addr netip.Addr) (func(), error) {
	to, port, err := udpSocket(addr)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(to, unix.SOL_SOCKET, unix.SO_RCVBUF, 0); err != nil {
		unix.Close(to)
		return nil, fmt.Errorf("SO_RCVBUF: %w", err)
	}
	from, _, err := udpSocket(addr)
	if err != nil {
		unix.Close(to)
		return nil, err
	}
	closeAll := func() { unix.Close(from); unix.Close(to) }
	if err := send(from, addr, port, 8, 1024); err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}
