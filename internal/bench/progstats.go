// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ProgCost is one BPF program's measured cost over a trial.
type ProgCost struct {
	Name    string
	Runs    uint64
	Runtime time.Duration
}

// NsPerRun is the program's mean run time.
func (p ProgCost) NsPerRun() float64 {
	if p.Runs == 0 {
		return 0
	}
	return float64(p.Runtime.Nanoseconds()) / float64(p.Runs)
}

// EnableProgStats turns on the kernel's per-program run time accounting until the returned
// closer is closed. It is BPF_ENABLE_STATS, not the kernel.bpf_stats_enabled sysctl: the kernel
// turns it off again when the descriptor closes, however this process ends.
func EnableProgStats() (io.Closer, error) {
	return ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
}

// ProgIDs lists the BPF programs loaded now.
func ProgIDs() (map[ebpf.ProgramID]bool, error) {
	ids := map[ebpf.ProgramID]bool{}
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, os.ErrNotExist) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		ids[next] = true
		id = next
	}
}

// ProgSnapshot reads the name and cumulative stats of each program in ids.
func ProgSnapshot(ids map[ebpf.ProgramID]bool) map[ebpf.ProgramID]ProgCost {
	out := map[ebpf.ProgramID]ProgCost{}
	for id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		var c ProgCost
		if info, err := p.Info(); err == nil {
			c.Name = info.Name
		}
		if st, err := p.Stats(); err == nil {
			c.Runs, c.Runtime = st.RunCount, st.Runtime
		}
		p.Close()
		out[id] = c
	}
	return out
}

// ProgDelta is what each program ran between two snapshots.
func ProgDelta(before, after map[ebpf.ProgramID]ProgCost) []ProgCost {
	var out []ProgCost
	for id, a := range after {
		b := before[id]
		out = append(out, ProgCost{Name: a.Name, Runs: a.Runs - b.Runs, Runtime: a.Runtime - b.Runtime})
	}
	return out
}
