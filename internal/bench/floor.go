// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"errors"
	"fmt"
	"io"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// FloorTracepoints are the raw tracepoints droptrace attaches to: kfree_skb for drops, and the
// NET_RX accounting's softirq entry and exit and napi_poll.
var FloorTracepoints = []string{"kfree_skb", "softirq_entry", "softirq_exit", "napi_poll"}

// floorNames name the empty programs (at most 15 characters) so that BPF statistics tell them
// apart.
var floorNames = map[string]string{"kfree_skb": "floor_kfree_skb", "softirq_entry": "floor_sirq_in",
	"softirq_exit": "floor_sirq_out", "napi_poll": "floor_napi_poll"}

// AttachFloor attaches a program that does nothing to each of droptrace's tracepoints, the way
// droptrace attaches its own (tp_btf). What it costs is what any program there costs before it
// does any work: the kernel's dispatch to it. It is the floor under droptrace's cost.
func AttachFloor() (io.Closer, error) {
	var c closers
	for _, tp := range FloorTracepoints {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         floorNames[tp],
			Type:         ebpf.Tracing,
			AttachType:   ebpf.AttachTraceRawTp,
			AttachTo:     tp,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("load empty program for %s: %w", tp, err)
		}
		c = append(c, p)
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("attach empty program to %s: %w", tp, err)
		}
		c = append(c, l)
	}
	return c, nil
}

type closers []io.Closer

func (c closers) Close() error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		errs = append(errs, c[i].Close())
	}
	return errors.Join(errs...)
}
