// SPDX-License-Identifier: Apache-2.0

package locreason

import (
	"slices"
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
)

// On 5.15.100 (5.17's enum) a location names what the kernel cannot: backlog and full-socket
// drops. A kernel with every reason, or without the enum, infers nothing on top of its own.
func TestInferredIsWhatTheEnumLacks(t *testing.T) {
	got := Inferred(dropreasontest.Table(t, "5.15.100"))
	if want := []string{"CPU_BACKLOG", "SOCKET_RCVBUFF"}; !slices.Equal(got, want) {
		t.Errorf("5.15.100: Inferred = %v, want %v", got, want)
	}
	if got := Inferred(nil); got != nil {
		t.Errorf("no enum: Inferred = %v", got)
	}
	if got := Inferred(dropreasontest.Table(t, "6.1")); got != nil {
		t.Errorf("6.1: Inferred = %v", got)
	}
}

// Reason gives only a real name: a function's fallback is no reason.
func TestReasonOfALocation(t *testing.T) {
	syms := kernelSyms(t, "5.15")
	n := New(syms)
	n.Learn(addr(t, syms, "udp_queue_rcv_one_skb+0x2fa"), "SOCKET_RCVBUFF")
	cases := []struct {
		loc, want string
		ok        bool
	}{
		{"enqueue_to_backlog+0x1e3", "CPU_BACKLOG", true},
		{"udp_queue_rcv_one_skb+0x2fa", "SOCKET_RCVBUFF", true},
		{"udp_queue_rcv_one_skb+0x1b0", "kfree_skb@udp_queue_rcv_one_skb", false},
		{"tcp_v4_rcv+0x5e", "kfree_skb@tcp_v4_rcv", false},
	}
	for _, c := range cases {
		if got, ok := n.Reason(addr(t, syms, c.loc)); got != c.want || ok != c.ok {
			t.Errorf("%s: Reason = %q, %v; want %q, %v", c.loc, got, ok, c.want, c.ok)
		}
	}
}
