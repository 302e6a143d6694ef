// SPDX-License-Identifier: Apache-2.0

package rank

import (
	"reflect"
	"testing"
)

func TestByCount(t *testing.T) {
	counts := map[string]uint64{"NO_SOCKET": 5, "CPU_BACKLOG": 812, "OTHERHOST": 5, "TCP_CSUM": 0, "SOCKET_FILTER": 7}
	for _, tc := range []struct {
		name string
		m    map[string]uint64
		n    int
		want []Entry
	}{
		{"nil map", nil, -1, []Entry{}},
		{"only zeros", map[string]uint64{"NO_SOCKET": 0}, -1, []Entry{}},
		{"all, ties by key, zero dropped", counts, -1, []Entry{
			{"CPU_BACKLOG", 812}, {"SOCKET_FILTER", 7}, {"NO_SOCKET", 5}, {"OTHERHOST", 5},
		}},
		{"limit cuts after the sort", counts, 3, []Entry{
			{"CPU_BACKLOG", 812}, {"SOCKET_FILTER", 7}, {"NO_SOCKET", 5},
		}},
		{"limit above the count", counts, 10, []Entry{
			{"CPU_BACKLOG", 812}, {"SOCKET_FILTER", 7}, {"NO_SOCKET", 5}, {"OTHERHOST", 5},
		}},
		{"limit zero", counts, 0, []Entry{}},
		{"largest uint64 first", map[string]uint64{"a": 1, "b": ^uint64(0)}, -1, []Entry{
			{"b", ^uint64(0)}, {"a", 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Repeated because map order is random: a missing tie-break shows up as flakiness.
			for range 20 {
				if got := ByCount(tc.m, tc.n); !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("ByCount(%v, %d) = %v, want %v", tc.m, tc.n, got, tc.want)
				}
			}
		})
	}
}

func TestTotal(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]uint64
		want uint64
	}{
		{nil, 0},
		{map[string]uint64{"a": 0}, 0},
		{map[string]uint64{"a": 3, "b": 4}, 7},
	} {
		if got := Total(tc.m); got != tc.want {
			t.Errorf("Total(%v) = %d, want %d", tc.m, got, tc.want)
		}
	}
}
