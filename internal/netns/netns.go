// SPDX-License-Identifier: Apache-2.0

// Package netns finds network namespaces and reads their /proc/net files.
//
// BPF tags each drop with its namespace's inode (net->ns.inum). The SNMP counters that drops
// are reconciled with (/proc/net/snmp, netstat, snmp6) exist once per namespace, so on a host
// with containers they must be read in each namespace: through a process that lives there, or,
// for an `ip netns` namespace with no process, by entering it on a locked OS thread.
package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// NS is one network namespace and a way to reach it.
type NS struct {
	Inode uint64
	// Name is "host" for droptrace's own namespace, the `ip netns` name, or "pid:N (comm)".
	Name string
	// Gen is the namespace's identity in this process: a number given when List first sees
	// it, and a new one when List finds the inode names another namespace now (see
	// identity.go). Counters of two generations are never subtracted.
	Gen uint64
	// Cookie is the kernel's netns cookie (SO_NETNS_COOKIE, Linux 5.14+), 0 when unknown.
	Cookie uint64
	pid    int    // the lowest pid seen in it (0: none known)
	path   string // a bind mount of it (/run/netns/NAME)
	// bound is the change time of path's nsfs inode when listed: the same path and inode
	// with another time is another namespace that got this one's inode.
	bound unix.Timespec
	self  bool
}

// RunDir is where `ip netns` keeps its bind mounts.
var RunDir = "/run/netns"

// ErrGone means the namespace can no longer be reached: its processes exited and nothing
// binds it.
var ErrGone = errors.New("network namespace is gone")

func stat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return st, err
}

// Self is the inode of the calling thread's namespace.
func Self() (uint64, error) {
	st, err := stat("/proc/thread-self/ns/net")
	if err != nil {
		return 0, fmt.Errorf("stat own netns: %w", err)
	}
	return st.Ino, nil
}

// recheckEvery bounds how stale List may be about a process that was already seen and later
// moved to another namespace (setns or unshare long after it started). Processes are new
// namespaces' usual carriers and are checked when first seen, so this only matters for the rare
// long-lived process that changes namespace, and buys reading ~1/10 of the pids each second.
// A variable so tests need not wait that long.
var recheckEvery = 10 * time.Second

// youngSightings is how many Lists re-read a new process's namespace every time: `unshare
// --net` and `ip netns exec` change it just after the process starts, possibly after the first
// look.
const youngSightings = 3

// proc is what List remembers of one process between calls.
type proc struct {
	procIno   uint64 // inode of /proc/<pid>: a new one means the pid was reused
	netIno    uint64 // 0: unreadable (not ours to inspect without root)
	prevNet   uint64 // netIno as the previous List left it (0: not seen then)
	sightings int
	epoch     int64 // recheck period in which netIno was last read
	comm      string
	seen      uint64 // generation of the last List that saw the pid
}

// cache is the process table List keeps: reading every /proc/<pid>/ns/net each second (a
// readlink with permission checks per process) would be most of what List costs.
var cache struct {
	sync.Mutex
	gen    uint64
	procs  map[int]*proc
	buf    []byte
	idents map[uint64]*ident // by inode, as the last List left them
}

// List finds every namespace droptrace can read: its own ("host"), every `ip netns` one, and
// one per distinct /proc/<pid>/ns/net (named after, and read through, the lowest pid in it).
//
// It is meant to be called every second on hosts with thousands of processes. /proc is walked
// each call, so new and exited processes are always seen, but a process already known has its
// namespace read again only in its first few sightings and then once every 10 s (spread over
// pids): a long-lived process that moves to a new namespace may be missed for that long.
// ReadFile re-checks the process it reads through, so a stale entry never reads the wrong
// namespace.
func List() ([]NS, error) {
	return list(time.Now())
}

func list(now time.Time) ([]NS, error) {
	self, err := Self()
	if err != nil {
		return nil, err
	}
	st, err := stat("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("stat own netns: %w", err)
	}
	nsfsDev := st.Dev
	byIno := map[uint64]*NS{self: {Inode: self, Name: "host", self: true}}
	var marks carriers

	if ents, err := os.ReadDir(RunDir); err == nil {
		for _, e := range ents {
			p := filepath.Join(RunDir, e.Name())
			st, err := stat(p)
			// A file that is not on nsfs is what `ip netns add` leaves when it fails, or a
			// namespace whose mount was lazily detached: nothing to enter.
			if err != nil || st.Dev != nsfsDev {
				continue
			}
			if n := byIno[st.Ino]; n != nil {
				if n.path == "" {
					n.path, n.bound = p, st.Ctim
					if !n.self {
						n.Name = e.Name()
					}
				}
				marks.mount(st.Ino, p, st.Ctim)
				continue
			}
			marks.mount(st.Ino, p, st.Ctim)
			byIno[st.Ino] = &NS{Inode: st.Ino, Name: e.Name(), path: p, bound: st.Ctim}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", RunDir, err)
	}

	cache.Lock()
	defer cache.Unlock()
	if err := refresh(now); err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(cache.procs))
	for pid, p := range cache.procs {
		if p.netIno != 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		p := cache.procs[pid]
		n := byIno[p.netIno]
		if n == nil {
			if p.comm == "" {
				p.comm = comm(pid)
			}
			n = &NS{Inode: p.netIno, Name: fmt.Sprintf("pid:%d (%s)", pid, p.comm)}
			byIno[p.netIno] = n
		}
		if n.pid == 0 {
			n.pid = pid
		}
		if p.prevNet == p.netIno {
			marks.stayed(p.netIno)
		}
	}
	identify(byIno, &marks)
	out := make([]NS, 0, len(byIno))
	for _, n := range byIno {
		out = append(out, *n)
	}
	slices.SortFunc(out, func(a, b NS) int { return cmpUint(a.Inode, b.Inode) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// refresh walks /proc and updates the process table. Called with cache locked.
func refresh(now time.Time) error {
	if cache.procs == nil {
		cache.procs = map[int]*proc{}
		cache.buf = make([]byte, 64<<10)
	}
	cache.gen++
	gen := cache.gen
	d, err := unix.Open("/proc", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	defer unix.Close(d)
	link := make([]byte, 64)
	for {
		n, err := unix.Getdents(d, cache.buf)
		if err != nil {
			return fmt.Errorf("read /proc: %w", err)
		}
		if n == 0 {
			break
		}
		for b := cache.buf[:n]; len(b) >= 19; {
			// struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, name.
			ino := binary.NativeEndian.Uint64(b[0:8])
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return fmt.Errorf("read /proc: malformed directory entry")
			}
			pid, ok := parsePid(b[19:reclen])
			b = b[reclen:]
			if !ok {
				continue
			}
			p := cache.procs[pid]
			if p == nil || p.procIno != ino {
				p = &proc{procIno: ino}
				cache.procs[pid] = p
			} else {
				p.prevNet = p.netIno
			}
			p.seen = gen
			p.sightings++
			epoch := recheckEpoch(pid, now)
			if p.sightings > youngSightings && p.epoch == epoch {
				continue
			}
			p.epoch = epoch
			netIno, err := readNetLink(d, pid, link)
			if err != nil {
				p.netIno = 0 // exited just now, or not ours to inspect
				continue
			}
			// comm is read again too: the process may have exec'd since (unshare -> sleep).
			p.netIno, p.comm = netIno, ""
		}
	}
	for pid, p := range cache.procs {
		if p.seen != gen {
			delete(cache.procs, pid)
		}
	}
	return nil
}

// recheckEpoch spreads the pids' periodic re-reads over the period, by a phase from the pid,
// so a call every second reads about a tenth of them rather than all of them every tenth call.
func recheckEpoch(pid int, now time.Time) int64 {
	period := int64(recheckEvery)
	phase := int64((uint64(pid) * 0x9E3779B97F4A7C15) % uint64(period))
	return (now.UnixNano() + phase) / period
}

// parsePid reads a NUL-terminated /proc entry name that is a pid.
func parsePid(name []byte) (int, bool) {
	pid := 0
	for i, c := range name {
		if c == 0 {
			return pid, i > 0
		}
		if c < '0' || c > '9' || pid > 1<<30 {
			return 0, false
		}
		pid = pid*10 + int(c-'0')
	}
	return pid, len(name) > 0 && pid > 0
}

func readNetLink(procDir, pid int, buf []byte) (uint64, error) {
	n, err := unix.Readlinkat(procDir, strconv.Itoa(pid)+"/ns/net", buf)
	if err != nil {
		return 0, err
	}
	ino, ok := parseLink(string(buf[:n]))
	if !ok {
		return 0, fmt.Errorf("/proc/%d/ns/net -> %q: not a network namespace", pid, buf[:n])
	}
	return ino, nil
}

// parseLink reads "net:[4026531840]".
func parseLink(s string) (uint64, bool) {
	s, ok := strings.CutPrefix(s, "net:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// pidsIn lists the other processes List last saw in namespace ino, lowest first.
func pidsIn(ino uint64, except int) []int {
	cache.Lock()
	defer cache.Unlock()
	var pids []int
	for pid, p := range cache.procs {
		if p.netIno == ino && pid != except {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// Do runs fn on an OS thread that has entered the namespace bound at path. The thread is
// returned to the Go runtime only if it could be moved back; otherwise it is discarded with
// its goroutine, so no other goroutine ever runs in the wrong namespace.
func Do(path string, fn func() error) error {
	return onThread(path, func() error {
		target, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", path, err)
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter netns %s (needs CAP_SYS_ADMIN): %w", path, err)
		}
		return nil
	}, fn)
}

// DoUnshared runs fn on an OS thread that has entered a new network namespace of its own, as
// Do does; the namespace lives as long as something in it (a socket fn left open) holds it.
func DoUnshared(fn func() error) error {
	return onThread("of its own", func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		return nil
	}, fn)
}

// onThread runs fn on a locked OS thread moved into a namespace by enter, named what in
// errors. The thread is unlocked once back in its own namespace; if it cannot return, it stays
// locked and the runtime discards it with the goroutine (but for the main thread, which it
// keeps idle: /proc/net, the main thread's view, would then show the wrong namespace, so
// returning matters).
func onThread(what string, enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- onLockedThread(what, enter, fn)
	}()
	return <-errc
}

func onLockedThread(what string, enter, fn func() error) error {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own netns: %w", err)
	}
	defer orig.Close()
	if err := enter(); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the goroutine ends and the runtime discards the thread.
		return errors.Join(ferr, fmt.Errorf("return from netns %s: %w", what, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Enter runs fn on a thread inside n (see Do): droptrace's own thread when n is its own
// namespace, else through the `ip netns` bind mount or the process List found in it. A process
// may have moved since; fn can compare Self with n.Inode.
func (n NS) Enter(fn func() error) error {
	switch {
	case n.self:
		return fn()
	case n.path != "":
		return Do(n.path, fn)
	case n.pid > 0:
		return Do("/proc/"+strconv.Itoa(n.pid)+"/ns/net", fn)
	}
	return fmt.Errorf("netns %d: no process or bind mount known: %w", n.Inode, ErrGone)
}
