// SPDX-License-Identifier: Apache-2.0

// Package netlab builds the hidden-loss scenario for privileged tests and benchmarks: two
// network namespaces joined by a veth pair, RPS on the receiving side, small net.core limits,
// and bounded UDP floods. Traffic only ever goes to addresses inside the namespaces it made.
//
// Every change is undone by Close, in reverse order; CleanupStale removes namespaces left by a
// run that was killed before it could clean up.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// Lab is one sender namespace and one receiver namespace joined by a veth pair.
type Lab struct {
	Sender, Receiver         string // netns names
	SenderIf, ReceiverIf     string
	SenderAddr, ReceiverAddr netip.Addr
	undo                     []func() error
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New creates the namespaces, the veth pair, addresses from 10.251.0.0/16 (they exist only
// inside these namespaces), a permanent neighbour entry (so no ARP queue drops blur the
// scenario) and IPv6 off (no DAD/MLD noise).
func New(prefix string) (*Lab, error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(rnd[:])
	l := &Lab{
		Sender: prefix + "tx-" + id, Receiver: prefix + "rx-" + id,
		SenderIf: "dt" + id + "s", ReceiverIf: "dt" + id + "r",
		SenderAddr:   netip.AddrFrom4([4]byte{10, 251, rnd[0], 1}),
		ReceiverAddr: netip.AddrFrom4([4]byte{10, 251, rnd[0], 2}),
	}
	if err := l.setup(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) setup() error {
	for _, ns := range []string{l.Sender, l.Receiver} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		name := ns
		l.undo = append(l.undo, func() error { return ip("netns", "del", name) })
		if err := l.inNetns(ns, func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("disable IPv6 in %s: %w", ns, err)
		}
	}
	steps := [][]string{
		{"link", "add", l.SenderIf, "netns", l.Sender, "type", "veth", "peer", "name", l.ReceiverIf, "netns", l.Receiver},
		{"-n", l.Sender, "addr", "add", l.SenderAddr.String() + "/24", "dev", l.SenderIf},
		{"-n", l.Receiver, "addr", "add", l.ReceiverAddr.String() + "/24", "dev", l.ReceiverIf},
		{"-n", l.Sender, "link", "set", "lo", "up"},
		{"-n", l.Receiver, "link", "set", "lo", "up"},
		{"-n", l.Sender, "link", "set", l.SenderIf, "up"},
		{"-n", l.Receiver, "link", "set", l.ReceiverIf, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	mac, err := exec.Command("ip", "netns", "exec", l.Receiver, "cat", "/sys/class/net/"+l.ReceiverIf+"/address").Output()
	if err != nil {
		return fmt.Errorf("read %s MAC: %w", l.ReceiverIf, err)
	}
	return ip("-n", l.Sender, "neigh", "replace", l.ReceiverAddr.String(), "lladdr", strings.TrimSpace(string(mac)),
		"dev", l.SenderIf, "nud", "permanent")
}

func (l *Lab) inNetns(name string, fn func() error) error {
	return netns.Do(netns.RunDir+"/"+name, fn)
}

// Close undoes everything New and the setters did, in reverse order, and reports every failure.
func (l *Lab) Close() error {
	var errs []error
	for i := len(l.undo) - 1; i >= 0; i-- {
		if err := l.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	l.undo = nil
	return errors.Join(errs...)
}

// SlowXDP attaches a generic-XDP program to the receiving veth that spends about burn of CPU
// per packet: a poll of a few queued packets then outlasts netdev_budget_usecs, and
// net_rx_action counts a time squeeze. It is detached by Close.
func (l *Lab) SlowXDP(burn time.Duration) error {
	spec, err := loadSlowxdp()
	if err != nil {
		return err
	}
	if err := spec.Variables["burn_ns"].Set(uint64(burn.Nanoseconds())); err != nil {
		return fmt.Errorf("set burn_ns: %w", err)
	}
	var objs slowxdpObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return fmt.Errorf("load slow XDP program: %w", err)
	}
	var lk link.Link
	// The interface index is looked up in the caller's namespace: attach from inside it.
	err = l.inNetns(l.Receiver, func() error {
		iface, err := net.InterfaceByName(l.ReceiverIf)
		if err != nil {
			return err
		}
		lk, err = link.AttachXDP(link.XDPOptions{Program: objs.SlowXdp, Interface: iface.Index, Flags: link.XDPGenericMode})
		return err
	})
	if err != nil {
		objs.Close()
		return fmt.Errorf("attach generic XDP to %s: %w", l.ReceiverIf, err)
	}
	l.undo = append(l.undo, func() error {
		lk.Close()
		return objs.Close()
	})
	return nil
}

// SetRPS steers the receiving veth's rx-0 queue to cpus. /sys/class/net shows the namespace of
// whoever mounted sysfs, so this goes through `ip netns exec`, which mounts the namespace's own.
// The setting goes away with the namespace.
func (l *Lab) SetRPS(cpus ...int) error {
	var mask uint64
	for _, c := range cpus {
		if c < 0 || c >= 64 {
			return fmt.Errorf("RPS CPU %d: this helper handles CPUs 0-63", c)
		}
		mask |= 1 << c
	}
	path := fmt.Sprintf("/sys/class/net/%s/queues/rx-0/rps_cpus", l.ReceiverIf)
	cmd := exec.Command("ip", "netns", "exec", l.Receiver, "sh", "-c", fmt.Sprintf("echo %x > %s", mask, path))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("set %s: %v: %s", path, err, out)
	}
	return nil
}

// SetSysctl sets a (global) sysctl and restores its value on Close.
func (l *Lab) SetSysctl(name, value string) error {
	orig, err := sysctl.Read(name)
	if err != nil {
		return err
	}
	if err := sysctl.Write(name, value); err != nil {
		return err
	}
	l.undo = append(l.undo, func() error { return sysctl.Write(name, orig) })
	return nil
}

// socketIn opens a UDP socket inside a namespace; the socket keeps that namespace afterwards.
func (l *Lab) socketIn(ns string) (int, error) {
	fd := -1
	err := l.inNetns(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	return fd, err
}

// Flood sends count UDP datagrams of size bytes from the sender namespace to ReceiverAddr:port,
// from a thread pinned to cpu, until done or ctx ends. It returns how many were sent.
func (l *Lab) Flood(ctx context.Context, cpu int, port uint16, count, size int) (int, error) {
	fd, err := l.socketIn(l.Sender)
	if err != nil {
		return 0, fmt.Errorf("sender socket: %w", err)
	}
	defer unix.Close(fd)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		// The thread's affinity is changed, so it is never handed back to the runtime: the
		// goroutine exits locked and Go discards the thread.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			res <- result{0, fmt.Errorf("pin flood to CPU %d: %w", cpu, err)}
			return
		}
		to := &unix.SockaddrInet4{Port: int(port), Addr: l.ReceiverAddr.As4()}
		buf := make([]byte, size)
		n := 0
		for n < count {
			if n%1024 == 0 && ctx.Err() != nil {
				break
			}
			if err := unix.Sendto(fd, buf, 0, to); err != nil {
				if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
					continue
				}
				res <- result{n, fmt.Errorf("sendto %s:%d: %w", l.ReceiverAddr, port, err)}
				return
			}
			n++
		}
		res <- result{n, nil}
	}()
	r := <-res
	return r.n, r.err
}

type fdCloser int

func (c fdCloser) Close() error { return unix.Close(int(c)) }

// ListenUnread binds a UDP socket in the receiver namespace with the smallest receive buffer
// the kernel allows, and never reads it: datagrams past the buffer are SOCKET_RCVBUFF drops.
func (l *Lab) ListenUnread(port uint16) (io.Closer, error) {
	fd, err := l.socketIn(l.Receiver)
	if err != nil {
		return nil, fmt.Errorf("receiver socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVBUF: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: l.ReceiverAddr.As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s:%d: %w", l.ReceiverAddr, port, err)
	}
	return fdCloser(fd), nil
}

// ReadFile reads a /proc/net file of the receiver namespace.
func (l *Lab) ReadFile(name string) ([]byte, error) {
	var b []byte
	err := l.inNetns(l.Receiver, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return b, err
}

// CleanupStale deletes namespaces named with prefix, left by a killed run.
func CleanupStale(prefix string) {
	ents, err := os.ReadDir(netns.RunDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			_ = ip("netns", "del", e.Name())
		}
	}
}
