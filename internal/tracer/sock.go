// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

// SockKey is the receiving socket of a socket-level drop as the packet names it: its
// destination, in the network namespace it was dropped in. A socket bound to a wildcard
// address shows here with the address the packet was sent to.
type SockKey struct {
	Netns  uint32 // netns inode
	Reason uint32 // raw enum skb_drop_reason; 0 on kernels without (Location says more)
	// Location is the call site of a drop counted through Options.SockFuncs; 0 otherwise.
	Location uint64
	L3       uint16 // ethertype
	L4       uint8  // IP protocol
	Addr     netip.Addr
	Port     uint16 // 0 when not TCP/UDP
}

// SockCount is how many drops of one key were counted since the previous ReadSockDrops.
type SockCount struct {
	Key   SockKey
	Count uint64
}

// sockReasonWords is DT_SOCK_REASON_WORDS: reasons 0 to 64*sockReasonWords-1 can be keyed by
// socket.
const sockReasonWords = len(dropsDropConfig{}.SockReasons)

// sockReasonBits is the drop_config.sock_reasons bitmap of codes; codes beyond it, and
// subsystem reasons, are not keyed by socket.
func sockReasonBits(codes []uint32) (bits [sockReasonWords]uint64) {
	for _, c := range codes {
		if c < 64*uint32(sockReasonWords) {
			bits[c/64] |= 1 << (c % 64)
		}
	}
	return bits
}

// ReadSockDrops returns the socket-level drops counted since the previous call (since the
// programs were attached, the first time), and drains the maps that held them. It ends a
// generation (flip): the drop_counts map of the ended generation is drained too, into the
// totals ReadDrops returns, so that the kernel keeps only the keys of one interval. Call it
// once per interval, outside the bracket of reads the checks compare: it waits for an RCU grace
// period.
func (t *Tracer) ReadSockDrops() ([]SockCount, error) {
	if !t.drops {
		return nil, nil
	}
	gen, err := t.flip()
	if err != nil {
		return nil, err
	}
	if err := t.drainDrops(gen); err != nil {
		return nil, err
	}
	maps := [2]*ebpf.Map{t.dropsM.SockDropsA, t.dropsM.SockDropsB}
	var out []SockCount
	err = readMap(maps[gen], true, t.ncpu, &t.sockBuf, func(k dropsSockKey, v []uint64) {
		out = append(out, SockCount{Key: t.sockKey(k), Count: v[0]})
	})
	if err != nil {
		return out, fmt.Errorf("drain socket drop map: %w", err)
	}
	return t.drainMemos(gen, out)
}

// drainMemos adds the drops still pending in generation gen's per-CPU memos (struct
// sock_memo) to out, and empties the memos for the generation's next turn.
func (t *Tracer) drainMemos(gen uint32, out []SockCount) ([]SockCount, error) {
	var memos []dropsSockMemo
	if err := t.dropsM.SockMemos.Lookup(gen, &memos); err != nil {
		return out, fmt.Errorf("read socket drop memos: %w", err)
	}
	at := make(map[SockKey]int, len(out))
	for i, c := range out {
		at[c.Key] = i
	}
	pending := false
	for _, m := range memos {
		if m.Pending == 0 {
			continue
		}
		pending = true
		k := t.sockKey(m.Key)
		if i, ok := at[k]; ok {
			out[i].Count += m.Pending
			continue
		}
		at[k] = len(out)
		out = append(out, SockCount{Key: k, Count: m.Pending})
	}
	if !pending {
		return out, nil // a memo with nothing pending is empty to BPF, whatever its key
	}
	if err := t.dropsM.SockMemos.Update(gen, make([]dropsSockMemo, len(memos)), ebpf.UpdateExist); err != nil {
		return out, fmt.Errorf("empty socket drop memos: %w", err)
	}
	return out, nil
}

// sockLoc is DT_SOCK_LOC: the sock_key reason of a drop counted through Options.SockFuncs,
// with the function's index in bits 16-30 and the call site's offset in bits 0-15.
const sockLoc = 1 << 31

func (t *Tracer) sockKey(k dropsSockKey) SockKey {
	sk := SockKey{Netns: k.Netns, Reason: k.Reason, L3: k.L3, L4: k.L4,
		Addr: ipAddr(k.L3, k.Addr), Port: k.Port}
	if k.Reason&sockLoc != 0 {
		sk.Reason = 0
		if i := int(k.Reason>>16) & 0x7fff; i < len(t.opts.SockFuncs) {
			sk.Location = t.opts.SockFuncs[i].Start + uint64(k.Reason&0xffff)
		}
	}
	return sk
}
