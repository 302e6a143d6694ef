// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"
)

// Filter selects the drops streamed as events; the aggregate and the socket map count every
// drop whatever it says. Each kind left empty matches everything; a drop must match every kind
// that is set, and any one value of it.
type Filter struct {
	Reasons []uint32 // drop reason codes, as Table.Code returns them
	Netns   []uint32 // netns inodes
	Ifaces  []Iface  // devices, each in its namespace
	Ports   []uint16 // source or destination port
	Protos  []uint8  // IP protocol numbers
}

// Iface is a device as BPF keys it: the inode of its namespace and its ifindex there.
type Iface struct {
	Netns, Ifindex uint32
}

// The most values of each kind, DT_FILTER_* in bpf/droptrace.h.
const (
	MaxFilterReasons = len(dropsDropConfig{}.Reasons)
	MaxFilterNetns   = len(dropsDropConfig{}.Netns)
	MaxFilterIfaces  = len(dropsDropConfig{}.Ifaces)
	MaxFilterPorts   = len(dropsDropConfig{}.Ports)
)

// ErrFilterTooLarge means a filter kind has more values than BPF holds.
var ErrFilterTooLarge = errors.New("too many filter values")

// Active says whether any kind is set.
func (f Filter) Active() bool {
	return len(f.Reasons)+len(f.Netns)+len(f.Ifaces)+len(f.Ports)+len(f.Protos) > 0
}

// Check says whether every kind fits in BPF.
func (f Filter) Check() error {
	for _, k := range []struct {
		name   string
		n, max int
	}{
		{"reasons", len(f.Reasons), MaxFilterReasons},
		{"network namespaces", len(f.Netns), MaxFilterNetns},
		{"interfaces", len(f.Ifaces), MaxFilterIfaces},
		{"ports", len(f.Ports), MaxFilterPorts},
	} {
		if k.n > k.max {
			return fmt.Errorf("%d %s: %w (at most %d)", k.n, k.name, ErrFilterTooLarge, k.max)
		}
	}
	return nil
}

// setFilter writes f into the drop programs' configuration; f has passed Check.
func (cfg *dropsDropConfig) setFilter(f Filter) {
	if f.Active() {
		cfg.Filter = 1
	}
	cfg.Nreasons = uint32(copy(cfg.Reasons[:], f.Reasons))
	cfg.Nnetns = uint32(copy(cfg.Netns[:], f.Netns))
	for i, ifc := range f.Ifaces[:min(len(f.Ifaces), len(cfg.Ifaces))] {
		cfg.Ifaces[i].Netns, cfg.Ifaces[i].Ifindex = ifc.Netns, ifc.Ifindex
		cfg.Nifaces++
	}
	cfg.Nports = uint32(copy(cfg.Ports[:], f.Ports))
	if len(f.Protos) > 0 {
		cfg.ProtosOn = 1
		for _, p := range f.Protos {
			cfg.Protos[p/64] |= 1 << (p % 64)
		}
	}
}
