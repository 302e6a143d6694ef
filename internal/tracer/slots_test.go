// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

// sealOf is the seal count_in_slot (bpf/drops.c) writes with a key.
func sealOf(k dropsDropKey) uint64 {
	seal := uint64(dtSlotSealed)
	if k.Location != 0 {
		seal |= dtSlotWord(0)
	}
	if k.Reason != 0 || k.Netns != 0 {
		seal |= dtSlotWord(1)
	}
	if k.Ifindex != 0 || k.L3 != 0 || k.L4 != 0 || k.Pad != 0 {
		seal |= dtSlotWord(2)
	}
	return seal
}

// A slot copied while its key was being written reads some words as the zeros they were: the
// seal must reject every such copy, and accept a whole key even where its words are zero.
func TestSealedRejectsTornSlots(t *testing.T) {
	full := dropsDropKey{Location: 0xffffffff81000000, Reason: 2, Netns: 4026531833, Ifindex: 1, L3: EthIPv4, L4: 17}
	noReason := dropsDropKey{Location: 0xffffffff81000000, Ifindex: 1, L3: EthIPv4}
	// words keeps the key's 64-bit words selected by mask and zeroes the others.
	words := func(k dropsDropKey, mask int) dropsDropKey {
		var out dropsDropKey
		if mask&1 != 0 {
			out.Location = k.Location
		}
		if mask&2 != 0 {
			out.Reason, out.Netns = k.Reason, k.Netns
		}
		if mask&4 != 0 {
			out.Ifindex, out.L3, out.L4, out.Pad = k.Ifindex, k.L3, k.L4, k.Pad
		}
		return out
	}
	for _, k := range []dropsDropKey{full, noReason} {
		for mask := 0; mask < 8; mask++ {
			torn := words(k, mask)
			got := sealed(dropsDropSlot{Count: 3, Key: torn, Seal: sealOf(k)})
			if want := torn == k; got != want {
				t.Errorf("key %+v read as %+v: sealed %v, want %v", k, torn, got, want)
			}
			if sealed(dropsDropSlot{Count: 3, Key: torn}) {
				t.Errorf("key %+v read as %+v without its seal: accepted", k, torn)
			}
		}
		if sealed(dropsDropSlot{Key: k, Seal: sealOf(k)}) {
			t.Errorf("a free slot (count 0) was accepted")
		}
	}
}
