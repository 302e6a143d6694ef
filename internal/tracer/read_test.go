// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

func TestEstBusyNs(t *testing.T) {
	for _, c := range []struct {
		name string
		n    NetRx
		want uint64
	}{
		{"every run timed", NetRx{BusyNs: 5000, TimedRuns: 10}, 5000},
		{"nothing timed", NetRx{}, 0},
		// 16 timed runs of 100 ns, then 64 runs under load of which 4 were timed at 300 ns
		// each: the 60 untimed ones are taken to last as long.
		{"sampled", NetRx{BusyNs: 1600, TimedRuns: 16, SampleBusyNs: 1200, SampleRuns: 4, SampledFrom: 64}, 1600 + 64*300},
		// Fewer than one sampling period past the timed runs: their mean stands in.
		{"no sample yet", NetRx{BusyNs: 1600, TimedRuns: 16, SampledFrom: 5}, 1600 + 5*100},
		{"rounds to nearest", NetRx{SampleBusyNs: 10, SampleRuns: 3, SampledFrom: 1}, 3},
	} {
		if got := c.n.EstBusyNs(); got != c.want {
			t.Errorf("%s: EstBusyNs() = %d, want %d", c.name, got, c.want)
		}
	}
}
