// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

// A drop whose key finds its cache slot owned by another key must still be counted, in
// drop_counts; and ReadDrops must add a key's slot and map counts. Every slot on every CPU is
// given to a made-up key first, so the loopback drops can only be counted in the map.
func TestPrivDropsCountedWhenSlotsAreTaken(t *testing.T) {
	requireRoot(t)
	for _, force := range []bool{false, true} {
		name := map[bool]string{false: "tp_btf", true: "tracepoint"}[force]
		t.Run(name, func(t *testing.T) {
			tr, err := Open(Options{NoNetRx: true, ForceTracepoint: force})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			fake := fakeSlotKey
			takeSlots(t, tr)
			// One made-up key also in drop_counts_a, the generation BPF counts into: its counts there add to its slots'.
			inMap := make([]uint64, tr.ncpu)
			inMap[0] = 41
			if err := tr.dropsM.DropCountsA.Put(fake(7), inMap); err != nil {
				t.Fatal(err)
			}

			const n = 50
			sendUDP(t, closedUDPPort(t), n)

			counts, err := tr.ReadDrops()
			if err != nil {
				t.Fatal(err)
			}
			var udp uint64
			seen := map[uint64]uint64{}
			for _, c := range counts {
				var sum uint64
				for _, v := range c.PerCPU {
					sum += v
				}
				switch {
				case c.Key.Netns == 1 && c.Key.Ifindex == 999:
					seen[c.Key.Location] = sum
				case c.Key.L4 == 17 && c.Key.Netns == selfNetns(t) && c.Key.L3 == EthIPv4:
					udp += sum
				}
			}
			if udp < n {
				t.Errorf("with every slot taken, %d UDP drops counted of %d sent to a closed port", udp, n)
			}
			if len(seen) != dtDropCacheSlots {
				t.Errorf("ReadDrops returned %d of the %d made-up slot keys", len(seen), dtDropCacheSlots)
			}
			for i := range dtDropCacheSlots {
				want := uint64(tr.ncpu)
				if i == 7 {
					want += 41
				}
				if got := seen[fake(i).Location]; got != want {
					t.Errorf("made-up key %d: counted %d, want %d (a count of 1 in its slot on each of %d CPUs%s)",
						i, got, want, tr.ncpu, map[bool]string{true: " plus 41 in drop_counts"}[i == 7])
				}
			}
		})
	}
}

// A slot with count 0 is free (or being claimed): ReadDrops must not report its key.
func TestPrivFreeSlotsNotReported(t *testing.T) {
	requireRoot(t)
	tr, err := Open(Options{NoNetRx: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	pcs := make([]dropsDropCpu, tr.ncpu)
	for c := range pcs {
		k := dropsDropKey{Location: 0xfee, Netns: 3}
		pcs[c].Slots[dtDropCacheSlots-1] = dropsDropSlot{Count: 0, Key: k, Seal: sealOf(k)}
	}
	if err := tr.dropsM.DropPercpu.Put(uint32(0), pcs); err != nil {
		t.Fatal(err)
	}
	counts, err := tr.ReadDrops()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Key.Location == 0xfee && c.Key.Netns == 3 {
			t.Errorf("a slot with count 0 was reported: %+v", c)
		}
	}
}

// fakeSlotKey is the made-up key takeSlots gives slot i.
func fakeSlotKey(i int) dropsDropKey {
	return dropsDropKey{Location: 0xdead0000 + uint64(i), Reason: 1, Netns: 1, Ifindex: 999}
}

// takeSlots gives every cache slot on every CPU to a made-up key with a count of 1, so that
// drops of real keys can only be counted in the drop_counts maps.
func takeSlots(tb testing.TB, tr *Tracer) {
	tb.Helper()
	pcs := make([]dropsDropCpu, tr.ncpu)
	for c := range pcs {
		for i := range pcs[c].Slots {
			k := fakeSlotKey(i)
			pcs[c].Slots[i] = dropsDropSlot{Count: 1, Key: k, Seal: sealOf(k)}
		}
	}
	if err := tr.dropsM.DropPercpu.Put(uint32(0), pcs); err != nil {
		tb.Fatalf("fill the cache slots: %v", err)
	}
}
