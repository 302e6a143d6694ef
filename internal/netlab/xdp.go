// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf/link"
)

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
