// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// SlowXDP attaches a generic-XDP program to the receiving veth that spends about burn of CPU
// per packet: a poll of a few queued packets then outlasts netdev_budget_usecs, and
// net_rx_action counts a time squeeze. It is detached by Close.
func (l *Lab) SlowXDP(burn time.Duration) error {
	var detach func() error
	// The interface index is looked up in the caller's namespace: attach from inside it.
	err := l.inNetns(l.Receiver, func() error {
		var err error
		detach, err = SlowXDPOn(l.ReceiverIf, burn)
		return err
	})
	if err != nil {
		return err
	}
	l.onClose(detach)
	return nil
}

// SlowXDPOn attaches SlowXDP's program to the interface ifname of the caller's network
// namespace, a real NIC as well as a veth; the function it returns detaches it.
func SlowXDPOn(ifname string, burn time.Duration) (detach func() error, err error) {
	spec, err := loadSlowxdp()
	if err != nil {
		return nil, err
	}
	if err := spec.Variables["burn_ns"].Set(uint64(burn.Nanoseconds())); err != nil {
		return nil, fmt.Errorf("set burn_ns: %w", err)
	}
	prog, closeObjs, err := loadBurn(spec)
	if err != nil {
		return nil, err
	}
	iface, err := net.InterfaceByName(ifname)
	if err == nil {
		var lk link.Link
		lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: iface.Index, Flags: link.XDPGenericMode})
		if err == nil {
			return func() error {
				lk.Close()
				return closeObjs()
			}, nil
		}
	}
	closeObjs()
	return nil, fmt.Errorf("attach generic XDP to %s: %w", ifname, err)
}

// loadBurn loads the bpf_loop program (5.17+) or, where the kernel refuses it, the one that
// tail-calls itself, and returns the program and what closes it.
func loadBurn(spec *ebpf.CollectionSpec) (*ebpf.Program, func() error, error) {
	var loop struct {
		Prog *ebpf.Program `ebpf:"slow_xdp"`
	}
	loopErr := spec.LoadAndAssign(&loop, nil)
	if loopErr == nil {
		return loop.Prog, loop.Prog.Close, nil
	}
	c, err := loadChain(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("load slow XDP program: with bpf_loop: %w; chained: %w", loopErr, err)
	}
	return c.Prog, c.close, nil
}

// burnChain is the slow XDP program that tail-calls itself, with its maps.
type burnChain struct {
	Prog  *ebpf.Program `ebpf:"slow_xdp_chain"`
	Again *ebpf.Map     `ebpf:"burn_again"`
	Start *ebpf.Map     `ebpf:"burn_start"`
}

func (c *burnChain) close() error {
	return errors.Join(c.Prog.Close(), c.Again.Close(), c.Start.Close())
}

func loadChain(spec *ebpf.CollectionSpec) (*burnChain, error) {
	var c burnChain
	if err := spec.LoadAndAssign(&c, nil); err != nil {
		return nil, err
	}
	if err := c.Again.Put(uint32(0), c.Prog); err != nil {
		c.close()
		return nil, fmt.Errorf("chain slow XDP program to itself: %w", err)
	}
	return &c, nil
}
