// SPDX-License-Identifier: Apache-2.0

package session

import (
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// drops_l4 splits each CPU's drops by L4 protocol from the BPF aggregation key, and adds up
// to drops for every reason: the metrics' l4 label rests on it.
func TestDropsSplitByL4AddUp(t *testing.T) {
	s := testSession()
	a := mkSample(sampleSpec{at: 0, ns200: true})
	b := mkSample(sampleSpec{at: time.Second, backlog: [2]uint64{30, 5}, rcvbuf: 7, ns200: true})
	arp := tracer.DropKey{Reason: 71, Netns: 200, Ifindex: 2, L3: 0x0806, Location: 0xa}
	tcp6 := tracer.DropKey{Reason: 71, Netns: 200, Ifindex: 2, L3: tracer.EthIPv6, L4: 6, Location: 0xa}
	gre := tracer.DropKey{Reason: 3, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 47, Location: 0xc}
	odd := tracer.DropKey{Reason: 3, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: 253, Location: 0xc}
	a.Drops[arp], a.Drops[tcp6], a.Drops[gre], a.Drops[odd] = []uint64{1, 0}, []uint64{0, 0}, []uint64{0, 0}, []uint64{0, 0}
	b.Drops[arp], b.Drops[tcp6], b.Drops[gre], b.Drops[odd] = []uint64{3, 0}, []uint64{4, 1}, []uint64{0, 2}, []uint64{0, 1}
	iv := s.record(s.diff(a, b), 1, sysctl.NetCore{})

	want := map[int]map[string]map[string]uint64{
		0: {"CPU_BACKLOG": {"udp": 30, "none": 2, "tcp": 4}},
		1: {"CPU_BACKLOG": {"udp": 5, "tcp": 1}, "SOCKET_RCVBUFF": {"udp": 7}, "NO_SOCKET": {"gre": 2, "253": 1}},
	}
	for _, c := range iv.CPUs {
		for reason, n := range c.Drops {
			var sum uint64
			for l4, m := range c.DropsL4[reason] {
				sum += m
				if w := want[c.CPU][reason][l4]; w != m {
					t.Errorf("CPU %d %s l4 %s: %d, want %d", c.CPU, reason, l4, m, w)
				}
			}
			if sum != n {
				t.Errorf("CPU %d %s: drops_l4 adds up to %d, drops says %d", c.CPU, reason, sum, n)
			}
		}
		if len(c.DropsL4) != len(want[c.CPU]) {
			t.Errorf("CPU %d drops_l4 %v, want %v", c.CPU, c.DropsL4, want[c.CPU])
		}
	}
}
