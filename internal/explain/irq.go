// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/record"
)

// irqConcentration finds the classic layout problem: (nearly) every network interrupt lands on
// one CPU that is busy in NET_RX while others idle.
func (e *explainer) irqConcentration() {
	if len(e.iv.NetIRQs) == 0 || len(e.iv.CPUs) < 2 {
		return
	}
	var total uint64
	byCPU := map[int]uint64{}
	for _, q := range e.iv.NetIRQs {
		total = record.AddSat(total, q.Count)
		for cpu, v := range q.ByCPU {
			byCPU[cpu] = record.AddSat(byCPU[cpu], v)
		}
	}
	if total < 100 {
		return // too few interrupts to call a layout
	}
	top, topN := -1, uint64(0)
	for cpu, v := range byCPU {
		if v > topN || v == topN && cpu < top {
			top, topN = cpu, v
		}
	}
	share := float64(topN) / float64(total)
	if share < 0.9 {
		return
	}
	busy := map[int]float64{}
	var hotDropped, hotSqueezes uint64
	for _, c := range e.iv.CPUs {
		if c.NetRx != nil && e.dur > 0 {
			busy[c.CPU] = 100 * float64(c.NetRx.BusyUs) / float64(e.dur.Microseconds())
		}
		if c.CPU == top && c.Softnet != nil {
			hotDropped, hotSqueezes = c.Softnet.Dropped, c.Softnet.TimeSqueeze
		}
	}
	var idle []int
	for _, c := range e.iv.CPUs {
		if c.CPU != top && busy[c.CPU] < 10 {
			idle = append(idle, c.CPU)
		}
	}
	if len(idle) == 0 || (busy[top] < 25 && hotDropped == 0 && hotSqueezes == 0) {
		return // the other CPUs are busy too, or the hot one is not struggling
	}
	sev := record.SeverityWarning
	if hotDropped > 0 {
		sev = record.SeverityCritical
	}
	var irqs []string
	queues := map[string][]record.IRQCount{}
	for _, q := range e.iv.NetIRQs {
		irqs = append(irqs, fmt.Sprintf("%d (%s q%d)", q.IRQ, q.Ifname, q.Queue))
		if q.Ifname != "" && q.Queue >= 0 {
			queues[q.Ifname] = append(queues[q.Ifname], q)
		}
	}
	irqbalance := e.start != nil && e.start.Context != nil && e.start.Context.Irqbalance
	ev := map[string]any{
		"cpu_interrupts": topN, "net_interrupts": total, "share_pct": math.Round(share*1000) / 10,
		"busy_pct": math.Round(busy[top]*10) / 10, "idle_cpus": fmt.Sprint(idle), "irqbalance": irqbalance,
		"irqs": strings.Join(irqs, ", "), "backlog_dropped": hotDropped, "time_squeeze": hotSqueezes,
	}
	var fixes []string
	if !irqbalance {
		fixes = append(fixes, "irqbalance is not running: systemctl enable --now irqbalance")
	}
	// Concrete commands: spread multi-queue interfaces' IRQs round robin over all CPUs, and
	// steer single-queue ones to the idle CPUs with RPS.
	cpus := make([]int, 0, len(e.iv.CPUs))
	for _, c := range e.iv.CPUs {
		cpus = append(cpus, c.CPU)
	}
	for _, name := range slices.Sorted(maps.Keys(queues)) {
		qs := queues[name]
		if len(qs) > 1 {
			var cmds []string
			for i, q := range qs {
				cmds = append(cmds, fmt.Sprintf("echo %d > /proc/irq/%d/smp_affinity_list", cpus[i%len(cpus)], q.IRQ))
			}
			fixes = append(fixes, strings.Join(cmds, "; "))
		} else {
			fixes = append(fixes, fmt.Sprintf("%s has one RX queue: steer its packets to the idle CPUs with RPS: echo %s > /sys/class/net/%s/queues/rx-%d/rps_cpus",
				name, hostctx.FormatCPUMask(idle), name, max(qs[0].Queue, 0)))
		}
	}
	e.out = append(e.out, record.Verdict{
		ID: IRQConcentration, Severity: sev, CPU: cpuPtr(top), Evidence: ev, Confidence: record.ConfidenceHigh,
		Cause: fmt.Sprintf("%.0f%% of network interrupts (%d of %d) landed on CPU %d, busy %.0f%% in NET_RX, while CPUs %v were nearly idle",
			100*share, topN, total, top, busy[top], idle),
		Fix: strings.Join(fixes, "; "),
	})
}

// multicast ties drops to multicast groups to membership changes in the same interval: a
// group left (or joined late) makes its datagrams find no socket.
func (e *explainer) multicast() {
	if len(e.iv.McastChanges) == 0 || e.iv.MulticastDropEvents == 0 {
		return
	}
	e.out = append(e.out, record.Verdict{
		ID: MulticastChange, Severity: record.SeverityInfo, Confidence: record.ConfidenceMedium,
		Evidence: map[string]any{"multicast_drop_events": e.iv.MulticastDropEvents, "changes": strings.Join(e.iv.McastChanges, ", ")},
		Cause: fmt.Sprintf("%d drop events to multicast groups coincide with membership changes: %s",
			e.iv.MulticastDropEvents, strings.Join(e.iv.McastChanges, ", ")),
		Fix: "check the receivers' group joins (`ip maddr show`, the application's IP_ADD_MEMBERSHIP) and IGMP/MLD snooping on the switch; drops to a group nobody joined are expected",
	})
}
