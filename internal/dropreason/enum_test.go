// SPDX-License-Identifier: Apache-2.0

package dropreason_test

import (
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
)

// The first enum, 5.17's, as the 5.15 stable series carries it backported (testdata/enum says
// where it comes from): twelve reasons, NOT_SPECIFIED 0, none of 5.18's.
func TestFirstEnumOf515(t *testing.T) {
	tab := dropreasontest.Table(t, "5.15.100")
	if tab.Len() != 12 {
		t.Errorf("Len() = %d, want 12", tab.Len())
	}
	for name, code := range map[string]uint32{"NOT_SPECIFIED": 0, "NO_SOCKET": 1, "NETFILTER_DROP": 6, "UNICAST_IN_L2_MULTICAST": 11} {
		if got, ok := tab.Code(name); !ok || got != code {
			t.Errorf("Code(%q) = %d, %v; want %d", name, got, ok, code)
		}
	}
	for _, later := range []string{"CPU_BACKLOG", "SOCKET_RCVBUFF", "SOCKET_BACKLOG", "PROTO_MEM", "TCP_LISTEN_OVERFLOW", "MAX"} {
		if c, ok := tab.Code(later); ok {
			t.Errorf("Code(%q) = %d: not in the first enum", later, c)
		}
	}
}
