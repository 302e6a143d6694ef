// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"testing"

	"github.com/cilium/ebpf"
)

// The program for kernels without bpf_loop burns until burn_ns has passed, across its own
// tail calls, lets the packet pass, and leaves no start behind for the next packet.
func TestPrivChainedSlowXDPPassesAndResets(t *testing.T) {
	requireRoot(t)
	spec, err := loadSlowxdp()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["burn_ns"].Set(uint64(100_000)); err != nil {
		t.Fatal(err)
	}
	c, err := loadChain(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	const xdpPass = 2
	for range 3 {
		ret, err := c.Prog.Run(&ebpf.RunOptions{Data: make([]byte, 64)})
		if err != nil {
			t.Fatal(err)
		}
		if ret != xdpPass {
			t.Fatalf("returned %d, want XDP_PASS", ret)
		}
	}
	var starts []uint64
	if err := c.Start.Lookup(uint32(0), &starts); err != nil {
		t.Fatal(err)
	}
	for cpu, s := range starts {
		if s != 0 {
			t.Errorf("CPU %d keeps a burn start %d after the packet", cpu, s)
		}
	}
}
