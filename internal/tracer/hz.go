// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// knownHZ are the CONFIG_HZ choices the kernel offers (kernel/Kconfig.hz).
var knownHZ = []int{100, 250, 300, 1000}

// MeasureHZ finds the kernel's HZ when no kernel config is available: it reads jiffies twice
// through bpf_jiffies64, `over` apart, and rounds the rate to the nearest CONFIG_HZ choice.
// 100 ms keeps the neighbours (250 vs 300 ticks/s: 25 vs 30 jiffies) well apart.
func MeasureHZ(over time.Duration) (int, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SocketFilter,
		License: "Dual BSD/GPL",
		Instructions: asm.Instructions{
			asm.FnJiffies64.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		return 0, fmt.Errorf("load jiffies probe: %w", err)
	}
	defer prog.Close()
	read := func() (uint32, time.Time, error) {
		ret, err := prog.Run(&ebpf.RunOptions{Data: make([]byte, 14)})
		return ret, time.Now(), err
	}
	j0, t0, err := read()
	if err != nil {
		return 0, fmt.Errorf("run jiffies probe: %w", err)
	}
	time.Sleep(over)
	j1, t1, err := read()
	if err != nil {
		return 0, fmt.Errorf("run jiffies probe: %w", err)
	}
	rate := float64(j1-j0) / t1.Sub(t0).Seconds()
	best := knownHZ[0]
	for _, hz := range knownHZ {
		if abs(float64(hz)-rate) < abs(float64(best)-rate) {
			best = hz
		}
	}
	if abs(float64(best)-rate) > 0.15*float64(best) {
		return 0, fmt.Errorf("jiffies advanced at %.0f/s, not near any CONFIG_HZ choice", rate)
	}
	return best, nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
