// SPDX-License-Identifier: Apache-2.0

package probe

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/tracer"
)

// BPF counts by socket the kernel's socket-level reasons, and the socket-level functions' drops
// without a reason wherever a location names them: on 5.15.100 both, since its full-socket
// drops are NOT_SPECIFIED.
func TestSockCountingOfEachKind(t *testing.T) {
	fns := []tracer.FuncRange{{Start: 0x1000, End: 0x1800}}
	funcs := func() []tracer.FuncRange { return fns }
	host := func(kernel string) Host {
		tab := dropreasontest.Table(t, kernel)
		return Host{Reasons: tab, Inferred: locreason.Inferred(tab)}
	}
	cases := []struct {
		name  string
		host  Host
		codes []uint32
		fns   []tracer.FuncRange
	}{
		// NO_SOCKET 1, SOCKET_FILTER 4: 5.15.100's socket-level reasons.
		{"5.15.100", host("5.15.100"), []uint32{1, 4}, fns},
		{"6.1", host("6.1"), []uint32{15, 2}, nil},
		{"5.10", Host{ReasonsErr: fmt.Errorf("read drop reasons: %w", dropreason.ErrNoEnum)}, nil, fns},
	}
	for _, c := range cases {
		codes, got := c.host.sockCounting(funcs)
		if !reflect.DeepEqual(codes, c.codes) || !reflect.DeepEqual(got, c.fns) {
			t.Errorf("%s: codes %v, functions %v; want %v, %v", c.name, codes, got, c.codes, c.fns)
		}
	}
}
