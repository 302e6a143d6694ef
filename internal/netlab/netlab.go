// SPDX-License-Identifier: Apache-2.0

// Package netlab builds the hidden-loss scenario for privileged tests and benchmarks: two
// network namespaces joined by a veth pair, RPS on the receiving side, small net.core limits,
// and bounded UDP floods. Traffic only ever goes to addresses inside the namespaces it made.
//
// Every change is undone by Close, in reverse order. What a killed process could not undo is
// undone by CleanupStale (or the next lab that changes sysctls): each lab holds a lock file
// while it lives, and global sysctls are journaled under a host-wide lock before they change.
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/flood"
	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// StateDir holds the labs' lock files and the sysctl journal. It is on tmpfs: a reboot, which
// also resets sysctls and namespaces, empties it.
const StateDir = "/run/droptrace-netlab"

// sysctlLockPath is held by whoever has changed global sysctls; internal/sysctl's root test
// takes it too, so the two never save each other's temporary value as the original.
const sysctlLockPath = StateDir + "/sysctl.lock"

// SysctlLockWait bounds how long SetSysctl waits for another lab (another test package, or
// dtlab) to restore the sysctls it changed.
var SysctlLockWait = 5 * time.Minute

// Lab is one sender namespace and one receiver namespace joined by a veth pair.
type Lab struct {
	Sender, Receiver         string // netns names
	SenderIf, ReceiverIf     string
	SenderAddr, ReceiverAddr netip.Addr

	prefix, id string
	lock       *os.File // held while the lab exists: CleanupStale leaves live labs alone
	journal    *os.File // the sysctl lock and journal, once SetSysctl was called
	restoreErr bool     // a sysctl could not be restored: keep its journal entry for later

	mu   sync.Mutex // guards undo: sockets may be opened from several goroutines
	undo []func() error
}

// onClose registers an undo step; Close runs them newest first.
func (l *Lab) onClose(fn func() error) {
	l.mu.Lock()
	l.undo = append(l.undo, fn)
	l.mu.Unlock()
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// New creates the namespaces (prefix+"tx-"+id and prefix+"rx-"+id), the veth pair, addresses in
// a /24 of 10.251.0.0/16 (they exist only inside these namespaces, so labs never collide), lo up
// in both, a permanent neighbour entry (so no ARP queue drops blur the scenario) and IPv6 off
// (no DAD/MLD noise). Nothing global changes until a setter is called.
func New(prefix string) (*Lab, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab prefix %q: want a lowercase name of 1-20 letters, digits and dashes", prefix)
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("lab id: %w", err)
	}
	id := hex.EncodeToString(rnd[:])
	l := &Lab{
		Sender: prefix + "tx-" + id, Receiver: prefix + "rx-" + id,
		SenderIf: "dt" + id + "s", ReceiverIf: "dt" + id + "r",
		SenderAddr:   netip.AddrFrom4([4]byte{10, 251, rnd[0], 1}),
		ReceiverAddr: netip.AddrFrom4([4]byte{10, 251, rnd[0], 2}),
		prefix:       prefix, id: id,
	}
	if err := l.setup(); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return l, nil
}

func labLockPath(prefix, id string) string {
	return filepath.Join(StateDir, "lab-"+prefix+id+".lock")
}

func (l *Lab) setup() error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("lab state directory: %w", err)
	}
	// The lock file appears already locked (locked under a temporary name, then renamed) and
	// before the namespaces exist, so CleanupStale elsewhere never takes a live lab for stale.
	lockPath := labLockPath(l.prefix, l.id)
	f, err := os.CreateTemp(StateDir, ".lab-*")
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, f.Name(), unix.AT_FDCWD, lockPath, unix.RENAME_NOREPLACE); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("lab lock %s: %w", lockPath, err)
	}
	l.lock = f
	l.onClose(func() error {
		err := os.Remove(lockPath)
		l.lock.Close()
		return err
	})

	for _, ns := range []string{l.Sender, l.Receiver} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		name := ns
		l.onClose(func() error { return ip("netns", "del", name) })
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
	mac, err := l.sysfs(l.Receiver, "cat", "/sys/class/net/"+l.ReceiverIf+"/address")
	if err != nil {
		return fmt.Errorf("read %s MAC: %w", l.ReceiverIf, err)
	}
	return ip("-n", l.Sender, "neigh", "replace", l.ReceiverAddr.String(), "lladdr", mac,
		"dev", l.SenderIf, "nud", "permanent")
}

func (l *Lab) inNetns(name string, fn func() error) error {
	return netns.Do(netns.RunDir+"/"+name, fn)
}

// sysfs runs a command under `ip netns exec`, which mounts a sysfs of the namespace: the
// process's own /sys shows the namespace that mounted it, where the lab's veths are not.
func (l *Lab) sysfs(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// Close undoes everything New and the setters did, in reverse order, and reports every failure.
// Closing twice is harmless.
func (l *Lab) Close() error {
	l.mu.Lock()
	undo := l.undo
	l.undo = nil
	l.mu.Unlock()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
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
	l.onClose(func() error {
		lk.Close()
		return objs.Close()
	})
	return nil
}

// SetRPS steers the receiving veth's rx-0 queue to cpus; Close restores the mask it had.
func (l *Lab) SetRPS(cpus ...int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("SetRPS: no CPUs (an empty mask turns RPS off; say so by not calling SetRPS)")
	}
	for _, c := range cpus {
		// The kernel refuses CPUs it does not have; this only keeps the mask string sane.
		if c < 0 || c >= flood.MaxCPU {
			return fmt.Errorf("RPS CPU %d: out of range", c)
		}
	}
	path := fmt.Sprintf("/sys/class/net/%s/queues/rx-0/rps_cpus", l.ReceiverIf)
	orig, err := l.sysfs(l.Receiver, "cat", path)
	if err != nil {
		return fmt.Errorf("read RPS mask (needs CONFIG_RPS): %w", err)
	}
	write := func(mask string) error {
		_, err := l.sysfs(l.Receiver, "sh", "-c", `echo "$1" > "$2"`, "sh", mask, path)
		return err
	}
	if err := write(hostctx.FormatCPUMask(cpus)); err != nil {
		return fmt.Errorf("set RPS: %w", err)
	}
	l.onClose(func() error {
		if err := write(orig); err != nil {
			return fmt.Errorf("restore RPS mask %s: %w", orig, err)
		}
		return nil
	})
	return nil
}

// SetSysctl sets a sysctl of the host's namespace (net.core ones are global) and restores its
// value on Close, in reverse order of setting. The first call takes the host-wide sysctl lock,
// waiting up to SysctlLockWait for another lab to finish, so labs in concurrent test processes
// never record each other's temporary values as originals. It is held until Close, so a second
// lab in the same process waits for the first to close. The original value is journaled before
// the write, so a process killed before Close (a test timeout) is undone by the next lab or by
// CleanupStale.
func (l *Lab) SetSysctl(name, value string) error {
	if l.journal == nil {
		j, err := acquireSysctlLock(SysctlLockWait)
		if err != nil {
			return err
		}
		l.journal = j
		l.onClose(func() error {
			j := l.journal
			l.journal = nil
			// Entries that failed to restore stay for the next holder to retry.
			if !l.restoreErr {
				if err := j.Truncate(0); err != nil {
					j.Close()
					return fmt.Errorf("clear sysctl journal: %w", err)
				}
			}
			return j.Close() // and with it the lock
		})
	}
	orig, err := sysctl.Read(name)
	if err != nil {
		return err
	}
	if strings.Contains(orig, "\n") {
		return fmt.Errorf("sysctl %s: a multi-line value cannot be journaled", name)
	}
	if _, err := fmt.Fprintf(l.journal, "%s %s\n", name, orig); err != nil {
		return fmt.Errorf("journal sysctl %s: %w", name, err)
	}
	if err := sysctl.Write(name, value); err != nil {
		return err
	}
	l.onClose(func() error {
		if err := sysctl.Write(name, orig); err != nil {
			l.restoreErr = true
			return fmt.Errorf("restore: %w", err)
		}
		return nil
	})
	return nil
}

// errSysctlBusy means another live lab has changed sysctls and not restored them yet.
var errSysctlBusy = errors.New("another lab has changed sysctls")

// acquireSysctlLock takes the host-wide sysctl lock, first restoring what a holder that died
// journaled and did not restore. The returned file holds the lock and is the journal, opened
// for appending.
func acquireSysctlLock(wait time.Duration) (*os.File, error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab state directory: %w", err)
	}
	f, err := os.OpenFile(sysctlLockPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sysctl lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", sysctlLockPath, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s held for over %s", errSysctlBusy, sysctlLockPath, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := restoreJournal(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// restoreJournal undoes a dead holder's changes, newest first, and empties the journal. A
// value that cannot be written back is reported but not retried forever.
func restoreJournal(f *os.File) error {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return fmt.Errorf("read sysctl journal: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var errs []error
	for i := len(lines) - 1; i >= 0; i-- {
		name, value, ok := strings.Cut(lines[i], " ")
		if !ok {
			continue // empty journal, or a line cut short by a crash: its write never happened
		}
		if err := sysctl.Write(name, value); err != nil {
			errs = append(errs, fmt.Errorf("restore a killed lab's change: %w", err))
		}
	}
	if err := f.Truncate(0); err != nil {
		errs = append(errs, fmt.Errorf("clear sysctl journal: %w", err))
	}
	return errors.Join(errs...)
}

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

func (l *Lab) checkNS(ns string) error {
	if ns != l.Sender && ns != l.Receiver {
		return fmt.Errorf("namespace %q is not this lab's (%s, %s)", ns, l.Sender, l.Receiver)
	}
	return nil
}

// ReadFile reads /proc/net/<name> (snmp, netstat, dev, ...) as seen from one of the lab's
// namespaces, l.Sender or l.Receiver.
func (l *Lab) ReadFile(ns, name string) ([]byte, error) {
	if err := l.checkNS(ns); err != nil {
		return nil, err
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("/proc/net file %q: want a plain file name", name)
	}
	var b []byte
	err := l.inNetns(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/%s in %s: %w", name, ns, err)
	}
	return b, nil
}

// LinkStats are an interface's counters as `ip -s link` shows them. RxDropped includes the
// drops the core counts against the device (dev_core_stats), such as a full per-CPU backlog.
type LinkStats struct {
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

// LinkStats reads the counters of an interface in one of the lab's namespaces.
func (l *Lab) LinkStats(ns, ifname string) (LinkStats, error) {
	if err := l.checkNS(ns); err != nil {
		return LinkStats{}, err
	}
	out, err := exec.Command("ip", "-n", ns, "-j", "-s", "link", "show", "dev", ifname).Output()
	if err != nil {
		return LinkStats{}, fmt.Errorf("ip -n %s -s link show dev %s: %w", ns, ifname, err)
	}
	return parseLinkStats(out)
}

func parseLinkStats(b []byte) (LinkStats, error) {
	var links []struct {
		Stats64 *struct {
			Rx struct{ Packets, Dropped uint64 } `json:"rx"`
			Tx struct{ Packets, Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(b, &links); err != nil {
		return LinkStats{}, fmt.Errorf("ip -j -s link output: %w", err)
	}
	if len(links) != 1 || links[0].Stats64 == nil {
		return LinkStats{}, fmt.Errorf("ip -j -s link output: want one link with stats64: %s", b)
	}
	s := links[0].Stats64
	return LinkStats{RxPackets: s.Rx.Packets, RxDropped: s.Rx.Dropped, TxPackets: s.Tx.Packets, TxDropped: s.Tx.Dropped}, nil
}

// CleanupStale removes what labs named with prefix left behind when their process was killed
// before Close: their namespaces (and with them the veths and RPS settings), lock files, and any
// journaled sysctl change not yet restored. Labs whose process still runs are left alone.
func CleanupStale(prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab prefix %q: want a lowercase name of 1-20 letters, digits and dashes", prefix)
	}
	var errs []error
	names := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(?:tx|rx)-([0-9a-f]{8})$`)
	ids := map[string]bool{}
	if ents, err := os.ReadDir(netns.RunDir); err == nil {
		for _, e := range ents {
			if m := names.FindStringSubmatch(e.Name()); m != nil {
				ids[m[1]] = true
			}
		}
	}
	if ents, err := os.ReadDir(StateDir); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), "lab-"+prefix); ok {
				if id, ok := strings.CutSuffix(id, ".lock"); ok && len(id) == 8 {
					ids[id] = true
				}
			}
		}
	}
	for id := range ids {
		if err := cleanupLab(prefix, id); err != nil {
			errs = append(errs, err)
		}
	}
	// A lock file a process was killed before naming; unlocked means its owner is gone.
	tmps, _ := filepath.Glob(filepath.Join(StateDir, ".lab-*"))
	for _, p := range tmps {
		if f, err := os.Open(p); err == nil {
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
				os.Remove(p)
			}
			f.Close()
		}
	}
	if _, err := os.Stat(sysctlLockPath); err == nil {
		if j, err := acquireSysctlLock(0); err == nil {
			j.Close()
		} else if !errors.Is(err, errSysctlBusy) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanupLab removes one lab's leftovers if no live process holds its lock.
func cleanupLab(prefix, id string) error {
	lockPath := labLockPath(prefix, id)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil // alive
		}
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	var errs []error
	for _, ns := range []string{prefix + "tx-" + id, prefix + "rx-" + id} {
		if _, err := os.Stat(filepath.Join(netns.RunDir, ns)); err == nil {
			if err := ip("netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(lockPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
