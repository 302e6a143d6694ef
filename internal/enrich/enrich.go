// SPDX-License-Identifier: Apache-2.0

// Package enrich names what records number, with lookups too slow or too stateful to do while
// a record is assembled: interface names learned from drop events and the host, and the
// processes owning overflowing sockets. Each lookup has its own bounded cache.
package enrich

import (
	"fmt"
	"sync"

	"github.com/droptrace/droptrace/internal/netns"
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

// ReadNet reads a /proc/net file (udp, udp6, tcp, tcp6) of the namespace with inode ino.
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
