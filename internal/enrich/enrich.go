// SPDX-License-Identifier: Apache-2.0

// Package enrich names what records number, with lookups too slow or too stateful to do while
// a record is assembled: interface names learned from drop events and the host, and the
// processes owning overflowing sockets. Each lookup has its own bounded cache.
package enrich

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/record"
)

// MaxIfnames bounds the interface names kept: interfaces come and go with containers.
const MaxIfnames = 4096

// Ifnames maps (namespace, ifindex) to interface names. It is safe for concurrent use: the
// drop event stream learns names while records are assembled.
type Ifnames struct {
	mu    sync.RWMutex
	names map[ifKey]string
}

type ifKey struct{ netns, ifindex uint32 }

// Learn remembers an interface's name; the first name learned for an index is kept, and
// none once MaxIfnames are known.
func (n *Ifnames) Learn(ns, ifindex uint32, name string) {
	if name == "" {
		return
	}
	k := ifKey{ns, ifindex}
	n.mu.RLock()
	_, ok := n.names[k]
	full := len(n.names) >= MaxIfnames
	n.mu.RUnlock()
	if ok || full {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil {
		n.names = map[ifKey]string{}
	}
	if _, ok := n.names[k]; !ok && len(n.names) < MaxIfnames {
		n.names[k] = name
	}
}

// Name is an interface's name, "" when unknown.
func (n *Ifnames) Name(ns, ifindex uint32) string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.names[ifKey{ns, ifindex}]
}

// MaxOwners bounds the socket owners kept; past it the cache starts again.
const MaxOwners = 1024

// Owners finds who holds each overflowing UDP socket: its inode from the namespace's
// /proc/net/udp(6), then the process with that socket open. The /proc walk is done once per
// socket and cached. It is not safe for concurrent use.
type Owners struct {
	fs    hostfs.FS
	cache map[ownerKey]owner
	// find is hostctx.FindOwner; tests replace it.
	find func(hostfs.FS, uint64) (hostctx.Owner, bool)
}

type ownerKey struct {
	netns uint32
	port  uint16
}

type owner struct {
	inode uint64
	owner hostctx.Owner
	found bool
}

// NewOwners returns an empty cache of the owners of fsys's processes.
func NewOwners(fsys hostfs.FS) *Owners {
	return &Owners{fs: fsys, cache: map[ownerKey]owner{}, find: hostctx.FindOwner}
}

// ReadNet reads a /proc/net file (udp, udp6) of the namespace with inode ino.
type ReadNet func(ino uint32, name string) ([]byte, error)

// NetnsFiles reads /proc/net files through the namespaces listed.
func NetnsFiles(nss []netns.NS) ReadNet {
	return func(ino uint32, name string) ([]byte, error) {
		for _, ns := range nss {
			if uint32(ns.Inode) == ino {
				return ns.ReadFile(name)
			}
		}
		return nil, fmt.Errorf("netns %d: %w", ino, netns.ErrGone)
	}
}

// Annotate sets the socket's drop counter and its owner on each port's SOCKET_RCVBUFF UDP
// drops.
func (o *Owners) Annotate(ports []record.PortDrops, read ReadNet) {
	for i := range ports {
		p := &ports[i]
		if p.Reason != "SOCKET_RCVBUFF" || p.L4 != "udp" {
			continue
		}
		sock := udpSocket(read, p.Netns, p.Port)
		if sock == nil {
			continue
		}
		p.SocketDrops = sock.Drops
		k := ownerKey{p.Netns, p.Port}
		c, ok := o.cache[k]
		if !ok || c.inode != sock.Inode {
			own, found := o.find(o.fs, sock.Inode)
			c = owner{inode: sock.Inode, owner: own, found: found}
			if len(o.cache) >= MaxOwners {
				clear(o.cache)
			}
			o.cache[k] = c
		}
		if c.found {
			p.PID, p.Comm, p.Cgroup = c.owner.PID, c.owner.Comm, c.owner.Cgroup
		}
	}
}

// udpSocket finds the UDP socket bound to port in namespace ino.
func udpSocket(read ReadNet, ino uint32, port uint16) *hostctx.UDPSocket {
	for _, file := range []string{"udp", "udp6"} {
		b, err := read(ino, file)
		if err != nil {
			continue
		}
		socks, err := hostctx.ParseProcNetUDP(bytes.NewReader(b))
		if err != nil {
			continue
		}
		for k := range socks {
			if socks[k].LocalPort == port {
				return &socks[k]
			}
		}
	}
	return nil
}
