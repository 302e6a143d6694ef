// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadFile reads /proc/net/<name> as seen from n: through the process List found in it, else
// the `ip netns` bind mount, else any other process now known to be in it.
func (n NS) ReadFile(name string) ([]byte, error) {
	bufs, errs := n.ReadFiles(name)
	return bufs[0], errs[0]
}

// ReadFiles reads several /proc/net files as ReadFile does, entering n once for all of them
// (one setns, or one open and two checks of the process's /proc directory): per namespace
// and interval, entering costs as much as reading. bufs[i] and errs[i] are names[i]'s.
func (n NS) ReadFiles(names ...string) (bufs [][]byte, errs []error) {
	return n.ReadFilesInto(nil, names...)
}

// ReadFilesInto is ReadFiles reading into scratch[i]'s storage, grown as needed, when
// scratch has a slice for names[i]: a caller reading the same files in many namespaces every
// interval no longer allocates the files' contents once its buffers are large enough. bufs[i] may share scratch[i]'s
// storage.
func (n NS) ReadFilesInto(scratch [][]byte, names ...string) (bufs [][]byte, errs []error) {
	bufs, errs = make([][]byte, len(names)), make([]error, len(names))
	for i := range min(len(scratch), len(names)) {
		bufs[i] = scratch[i][:0]
	}
	var todo []int // files no route has answered yet
	for i, name := range names {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			errs[i] = fmt.Errorf("netns file %q: want a plain /proc/net file name", name)
			continue
		}
		if n.self {
			// thread-self, not self: /proc/self/net is the main thread's namespace, and a
			// main thread left locked in another namespace is parked, not killed, by the
			// runtime.
			if bufs[i], errs[i] = readFile(unix.AT_FDCWD, "/proc/thread-self/net/"+name, bufs[i]); errs[i] != nil {
				errs[i] = fmt.Errorf("read own /proc/net/%s: %w", name, errs[i])
			}
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return bufs, errs
	}
	tried := make([][]error, len(names)) // each file's failed routes
	// viaPid answers the files of todo a process reaches; the others stay in todo. A file
	// this namespace lacks (snmp6 without IPv6) is an answer, not a reason to look further.
	viaPid := func(pid int) {
		bs, es := readViaPid(pid, n.Inode, names, todo, bufs)
		left := todo[:0]
		for _, i := range todo {
			if es[i] == nil || !errors.Is(es[i], ErrGone) {
				bufs[i], errs[i] = bs[i], es[i]
				continue
			}
			tried[i] = append(tried[i], es[i])
			left = append(left, i)
		}
		todo = left
	}
	if n.pid > 0 {
		viaPid(n.pid)
	}
	if n.path != "" && len(todo) > 0 {
		n.readViaPath(names, todo, bufs, tried)
		left := todo[:0]
		for _, i := range todo {
			if bufs[i] == nil {
				left = append(left, i)
			}
		}
		todo = left
	}
	if len(todo) > 0 {
		for _, pid := range pidsIn(n.Inode, n.pid) {
			if viaPid(pid); len(todo) == 0 {
				break
			}
		}
	}
	for _, i := range todo {
		if len(tried[i]) == 0 {
			tried[i] = append(tried[i], fmt.Errorf("netns %d: no process or bind mount known: %w", n.Inode, ErrGone))
		}
		bufs[i], errs[i] = nil, fmt.Errorf("read /proc/net/%s: %w", names[i], errors.Join(tried[i]...))
	}
	return bufs, errs
}

// readViaPath reads the files of todo in the namespace bound at n.path, in one setns. A file
// read sets bufs[i] (never nil on success); a failure is added to tried[i].
func (n NS) readViaPath(names []string, todo []int, bufs [][]byte, tried [][]error) {
	es := make([]error, len(names))
	err := n.stillBound()
	if err == nil {
		err = Do(n.path, func() error {
			for _, i := range todo {
				bufs[i], es[i] = readFile(unix.AT_FDCWD, "/proc/thread-self/net/"+names[i], bufs[i])
			}
			return nil
		})
	}
	for _, i := range todo {
		e := err
		if e == nil {
			e = es[i]
		}
		if e != nil {
			bufs[i] = nil
			tried[i] = append(tried[i], fmt.Errorf("netns %d via %s: %w", n.Inode, n.path, e))
		}
	}
}

// stillBound checks that n's bind mount still holds n: between two Lists the namespace may
// have been deleted and another bound at the same path, possibly with the same inode.
func (n NS) stillBound() error {
	st, err := stat(n.path)
	if err != nil {
		return fmt.Errorf("netns %d via %s: %w (%v)", n.Inode, n.path, ErrGone, err)
	}
	if st.Ino != n.Inode || st.Ctim != n.bound {
		return fmt.Errorf("netns %d via %s: replaced, the mount holds another namespace now (inode %d): %w", n.Inode, n.path, st.Ino, ErrGone)
	}
	return nil
}

// readViaPid reads /proc/<pid>/net/<name> for the names of todo through a descriptor of
// /proc/<pid>, which stays bound to that process: if it exits and the pid is reused, lookups
// through it fail instead of reaching the newcomer. The namespace is checked before the first
// open and after the last read, because a process may setns at any time. Errors wrap ErrGone
// when the process no longer reaches the namespace; bufs and errs are indexed like names.
func readViaPid(pid int, ino uint64, names []string, todo []int, scratch [][]byte) (bufs [][]byte, errs []error) {
	bufs, errs = make([][]byte, len(names)), make([]error, len(names))
	copy(bufs, scratch)
	fail := func(err error) ([][]byte, []error) {
		for _, i := range todo {
			bufs[i], errs[i] = nil, err
		}
		return bufs, errs
	}
	dir, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("netns %d via pid %d: %w (%v)", ino, pid, ErrGone, err))
	}
	defer unix.Close(dir)
	check := func() error {
		buf := make([]byte, 64)
		n, err := unix.Readlinkat(dir, "ns/net", buf)
		if err != nil {
			return fmt.Errorf("netns %d via pid %d: %w (%v)", ino, pid, ErrGone, err)
		}
		if got, ok := parseLink(string(buf[:n])); !ok || got != ino {
			return fmt.Errorf("netns %d via pid %d: the process moved to %s: %w", ino, pid, buf[:n], ErrGone)
		}
		return nil
	}
	if err := check(); err != nil {
		return fail(err)
	}
	for _, i := range todo {
		name := names[i]
		var err error
		if bufs[i], err = readFile(dir, "net/"+name, bufs[i]); err != nil {
			bufs[i], errs[i] = nil, fmt.Errorf("netns %d via pid %d: net/%s: %w", ino, pid, name, err)
		}
	}
	if err := check(); err != nil {
		return fail(err)
	}
	return bufs, errs
}

// readFile reads the file at path, relative to dirfd, into buf's storage, grown as needed
// (proc files have no size to size it by); the result is never nil without an error. Plain
// system calls, not os.File: registering each file with the runtime's poller, and growing a
// fresh buffer per file, were a large part of reading namespaces' counters.
func readFile(dirfd int, path string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(4096, cap(buf)))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
