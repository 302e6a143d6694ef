// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A namespace's inode (ns.inum) is freed with the namespace and handed to the next one the
// kernel creates, often at once (proc_alloc_inum takes the lowest free number). Counters read
// under one inode before and after that are two namespaces' counters, and their difference is
// noise. List therefore gives each namespace a generation (NS.Gen) that changes when the inode
// is found naming another namespace, detected without entering any namespace in the common
// case:
//
//   - a carrier that held the inode at the previous List still holds it: a process (same pid
//     and same /proc/<pid> inode) that was in it then and is in it now, or an `ip netns` bind
//     mount with the same path and the same nsfs inode change time (a bind of a new namespace
//     makes a new nsfs inode, so a namespace deleted and added again under its name has a new
//     time). A namespace cannot die while a carrier holds it, so it is the same one;
//   - otherwise (its carriers all changed since the previous List: the usual replacement, but
//     also a namespace whose short-lived processes all turned over) the netns cookie decides
//     where the kernel has SO_NETNS_COOKIE (5.14+): it is read once when a namespace is first
//     seen and again only in this case, by entering the namespace. Without it the namespace is
//     taken as replaced.
//
// An inode missing from a List is forgotten: if it comes back it has a new generation, and the
// sample in between had no counters for it, so there was no baseline to keep anyway.

// ident is what List remembers of one namespace between calls.
type ident struct {
	gen    uint64
	cookie uint64
	mounts []mount
	seen   uint64 // generation of the last List that saw it
}

// mount is an `ip netns` bind mount as a carrier: the nsfs inode's change time is set when the
// inode is made, which a bind mount keeps alive as long as it exists.
type mount struct {
	path  string
	ctime unix.Timespec
}

// carriers is what one List found holding each inode.
type carriers struct {
	mounts map[uint64][]mount
	stay   map[uint64]bool // a process seen in it by the previous List too
}

func (c *carriers) mount(ino uint64, path string, ctime unix.Timespec) {
	if c.mounts == nil {
		c.mounts = map[uint64][]mount{}
	}
	c.mounts[ino] = append(c.mounts[ino], mount{path, ctime})
}

func (c *carriers) stayed(ino uint64) {
	if c.stay == nil {
		c.stay = map[uint64]bool{}
	}
	c.stay[ino] = true
}

// kept says whether a carrier of the previous List still holds the namespace.
func (c *carriers) kept(ino uint64, before []mount) bool {
	if c.stay[ino] {
		return true
	}
	for _, m := range c.mounts[ino] {
		for _, b := range before {
			if m == b {
				return true
			}
		}
	}
	return false
}

var lastGen atomic.Uint64

// identify sets the generation and cookie of every listed namespace and forgets those not
// listed. Called with cache locked, after refresh (cache.gen is this List's).
func identify(byIno map[uint64]*NS, c *carriers) {
	if cache.idents == nil {
		cache.idents = map[uint64]*ident{}
	}
	for ino, n := range byIno {
		id := cache.idents[ino]
		if id == nil {
			id = &ident{gen: lastGen.Add(1), cookie: cookieOf(n)}
			cache.idents[ino] = id
		} else if !n.self && !c.kept(ino, id.mounts) {
			if ck := cookieOf(n); ck == 0 || ck != id.cookie {
				*id = ident{gen: lastGen.Add(1), cookie: ck}
			}
		}
		id.mounts, id.seen = c.mounts[ino], cache.gen
		n.Gen, n.Cookie = id.gen, id.cookie
	}
	for ino, id := range cache.idents {
		if id.seen != cache.gen {
			delete(cache.idents, ino)
		}
	}
}

// noCookie is set once the kernel has refused SO_NETNS_COOKIE: no namespace is entered for it
// again.
var noCookie atomic.Bool

// cookieOf reads n's netns cookie, entering it through its bind mount or its process; 0 when
// the kernel lacks the option or n cannot be entered.
func cookieOf(n *NS) uint64 {
	if noCookie.Load() {
		return 0
	}
	if n.self {
		ck, _ := socketCookie()
		return ck
	}
	var paths []string
	if n.path != "" {
		paths = append(paths, n.path)
	}
	if n.pid > 0 {
		paths = append(paths, "/proc/"+strconv.Itoa(n.pid)+"/ns/net")
	}
	for _, p := range paths {
		var ck uint64
		err := Do(p, func() error {
			// The path may name another namespace by now (a pid reused, a mount replaced).
			st, err := stat("/proc/thread-self/ns/net")
			if err != nil {
				return err
			}
			if st.Ino != n.Inode {
				return fmt.Errorf("%s is netns %d now, not %d", p, st.Ino, n.Inode)
			}
			ck, err = socketCookie()
			return err
		})
		if err == nil {
			return ck
		}
	}
	return 0
}

// socketCookie reads the cookie of the calling thread's namespace, through a socket made in it.
func socketCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ck, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if errors.Is(err, unix.ENOPROTOOPT) {
		noCookie.Store(true)
	}
	if err != nil {
		return 0, os.NewSyscallError("getsockopt SO_NETNS_COOKIE", err)
	}
	return ck, nil
}
