// SPDX-License-Identifier: Apache-2.0

// Package netns finds network namespaces and reads their /proc/net files.
//
// BPF tags each drop with its namespace's inode (net->ns.inum). The SNMP counters that drops
// are reconciled with (/proc/net/snmp, netstat, snmp6) exist once per namespace, so on a host
// with containers they must be read in each namespace: through a process that lives there, or,
// for an `ip netns` namespace with no process, by entering it on a locked OS thread.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// NS is one network namespace and a way to reach it.
type NS struct {
	Inode uint64
	// Name is "host" for droptrace's own namespace, the `ip netns` name, or "pid:N (comm)".
	Name string
	pid  int    // a process in it (0: none known)
	path string // a bind mount of it (/run/netns/NAME)
	self bool
}

// RunDir is where `ip netns` keeps its bind mounts.
var RunDir = "/run/netns"

func inodeOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// Self is the inode of the calling thread's namespace.
func Self() (uint64, error) {
	return inodeOf("/proc/thread-self/ns/net")
}

// List finds every namespace droptrace can read: its own, every `ip netns` one, and one per
// distinct /proc/<pid>/ns/net (the lowest pid). It uses readlink ("net:[inode]"), one syscall
// per process, so a host with thousands of processes is listed in milliseconds.
func List() ([]NS, error) {
	byIno := map[uint64]*NS{}
	self, err := Self()
	if err != nil {
		return nil, fmt.Errorf("own network namespace: %w", err)
	}
	byIno[self] = &NS{Inode: self, Name: "host", self: true}

	if ents, err := os.ReadDir(RunDir); err == nil {
		for _, e := range ents {
			p := filepath.Join(RunDir, e.Name())
			ino, err := inodeOf(p)
			if err != nil {
				continue
			}
			if n := byIno[ino]; n != nil {
				n.path = p
				if !n.self {
					n.Name = e.Name()
				}
				continue
			}
			byIno[ino] = &NS{Inode: ino, Name: e.Name(), path: p}
		}
	}

	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	pids := make([]int, 0, len(procs))
	for _, e := range procs {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	for _, pid := range pids {
		link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if err != nil {
			continue // exited, or a kernel thread we may not inspect
		}
		ino, ok := parseLink(link)
		if !ok {
			continue
		}
		n := byIno[ino]
		if n == nil {
			n = &NS{Inode: ino, Name: fmt.Sprintf("pid:%d (%s)", pid, comm(pid))}
			byIno[ino] = n
		}
		if n.pid == 0 {
			n.pid = pid
		}
	}
	out := make([]NS, 0, len(byIno))
	for _, n := range byIno {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Inode < out[j].Inode })
	return out, nil
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

// ErrGone means the namespace can no longer be reached.
var ErrGone = errors.New("network namespace is gone")

// ReadFile reads /proc/net/<name> as seen from n.
func (n NS) ReadFile(name string) ([]byte, error) {
	if strings.Contains(name, "/") || name == ".." {
		return nil, fmt.Errorf("netns file %q: want a plain /proc/net file name", name)
	}
	switch {
	case n.self:
		return os.ReadFile("/proc/self/net/" + name)
	case n.pid > 0:
		b, err := os.ReadFile("/proc/" + strconv.Itoa(n.pid) + "/net/" + name)
		// The pid may have exited and been reused by a process elsewhere: check it is still
		// in the namespace we mean.
		if link, lerr := os.Readlink("/proc/" + strconv.Itoa(n.pid) + "/ns/net"); lerr == nil {
			if ino, ok := parseLink(link); ok && ino == n.Inode && err == nil {
				return b, nil
			}
		}
		if n.path == "" {
			if err == nil {
				err = ErrGone
			}
			return nil, fmt.Errorf("netns %d via pid %d: %w", n.Inode, n.pid, err)
		}
	}
	if n.path == "" {
		return nil, fmt.Errorf("netns %d: %w", n.Inode, ErrGone)
	}
	var b []byte
	err := Do(n.path, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return b, err
}

// Do runs fn on an OS thread that has entered the namespace bound at path. The thread is
// returned to the Go runtime only if it could be moved back; otherwise it is discarded with
// its goroutine, so no other goroutine ever runs in the wrong namespace.
func Do(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- doLocked(path, fn)
	}()
	return <-errc
}

func doLocked(path string, fn func() error) error {
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("open own netns: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s (needs CAP_SYS_ADMIN): %w", path, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Stay locked: the goroutine ends and the runtime discards the thread.
		return fmt.Errorf("return from netns %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}
