// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
)

// Row summarises one mode of one workload over all rounds.
type Row struct {
	Workload Workload
	Mode     Mode
	Rounds   int
	PPS      float64 // median
	// Ratio is the median over rounds of the mode's rate over the same round's untraced rate;
	// RatioMin and RatioMax show the spread.
	Ratio, RatioMin, RatioMax float64
	// CPURatio is the same for datagrams per CPU second of the sender (Trial.CPUPPS): it does
	// not move when other tasks or the hypervisor take the flood's CPU.
	CPUPPS, CPURatio float64
	CPU              float64 // median tracer CPU share of one CPU
	PeakRSS          uint64  // largest over rounds
	ReadyMs          float64 // median attach-to-ready
	Events           *SummaryCounts
	DropsPerPacket   float64 // kernel-counted UDP drops per datagram sent, median
}

// Rows summarises a report, workloads in run order, modes in AllModes order.
func (r *Report) Rows() []Row {
	type key struct {
		w Workload
		m Mode
	}
	base := map[Workload]map[int]float64{}
	cbase := map[Workload]map[int]float64{}
	byKey := map[key][]Trial{}
	var order []key
	for _, t := range r.Trials {
		k := key{t.Workload, t.Mode}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], t)
		if t.Mode == ModeNone {
			if base[t.Workload] == nil {
				base[t.Workload] = map[int]float64{}
			}
			base[t.Workload][t.Round] = t.PPS()
			if cbase[t.Workload] == nil {
				cbase[t.Workload] = map[int]float64{}
			}
			cbase[t.Workload][t.Round] = t.CPUPPS()
		}
	}
	rank := map[Mode]int{}
	for i, m := range AllModes {
		rank[m] = i
	}
	wrank := map[Workload]int{}
	for _, k := range order {
		if _, ok := wrank[k.w]; !ok {
			wrank[k.w] = len(wrank)
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		if order[i].w != order[j].w {
			return wrank[order[i].w] < wrank[order[j].w]
		}
		return rank[order[i].m] < rank[order[j].m]
	})
	var rows []Row
	for _, k := range order {
		ts := byKey[k]
		row := Row{Workload: k.w, Mode: k.m, Rounds: len(ts), RatioMin: math.Inf(1), RatioMax: math.Inf(-1)}
		var pps, ratios, cpps, cratios, cpu, ready, dpp []float64
		for _, t := range ts {
			pps = append(pps, t.PPS())
			cpps = append(cpps, t.CPUPPS())
			if b := cbase[k.w][t.Round]; b > 0 {
				cratios = append(cratios, t.CPUPPS()/b)
			}
			if b := base[k.w][t.Round]; b > 0 {
				x := t.PPS() / b
				ratios = append(ratios, x)
				row.RatioMin = math.Min(row.RatioMin, x)
				row.RatioMax = math.Max(row.RatioMax, x)
			}
			if t.Sent > 0 {
				dpp = append(dpp, float64(t.UDP.NoPorts+t.UDP.RcvbufErrors)/float64(t.Sent))
			}
			if k.m != ModeNone && k.m != ModeFloor {
				cpu = append(cpu, t.CPUShare())
				ready = append(ready, float64(t.Ready.Microseconds())/1000)
				row.PeakRSS = max(row.PeakRSS, t.PeakRSS)
			}
			if s := t.Summary; s != nil {
				if row.Events == nil {
					row.Events = &SummaryCounts{}
				}
				e := row.Events
				e.Drops += s.Drops
				e.DropRecords += s.DropRecords
				e.Sent += s.Sent
				e.Written += s.Written
				e.Lost += s.Lost
				e.RateLimited += s.RateLimited
				e.RingFull += s.RingFull
				e.Unread += s.Unread
				e.WriteFailed += s.WriteFailed
			}
		}
		row.PPS, row.Ratio, row.CPU, row.ReadyMs = median(pps), median(ratios), median(cpu), median(ready)
		row.DropsPerPacket = median(dpp)
		row.CPUPPS, row.CPURatio = median(cpps), median(cratios)
		if len(ratios) == 0 {
			row.RatioMin, row.RatioMax = 0, 0
		}
		rows = append(rows, row)
	}
	return rows
}

var modeLabel = map[Mode]string{
	ModeNone:           "no tracer",
	ModeAggregate:      "droptrace (aggregate)",
	ModeEvents:         "droptrace --events, unlimited",
	ModeEventsLimited:  "droptrace --events, default limit",
	ModeEventsFiltered: "droptrace --port 1 (every event filtered in BPF)",
	ModePcap:           "droptrace --pcap, unlimited (events to pcapng)",
	ModeBpftrace:       "bpftrace one-liner",
	ModeFloor:          "empty programs at droptrace's 4 tracepoints",
}

var workloadLabel = map[Workload]string{
	WorkloadDrop:    "drop: UDP to a closed port on 127.0.0.1 (every datagram a NO_SOCKET drop)",
	WorkloadDeliver: "deliver: UDP to a socket on 127.0.0.1 read on the other CPU (NET_RX cost alone)",
}

func si(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.0fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// Print writes the tables (Markdown, as in docs/performance.md) and the targets' verdicts.
func (r *Report) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\ndroptrace cost: kernel %s, %d CPUs, flood pinned to CPU %d (%d-byte datagrams, sendmmsg batches of %d), sink and tracers unpinned\n",
		r.Kernel, r.CPUs, c.FloodCPU, c.Size, c.Batch)
	fmt.Fprintf(w, "%d rounds of %s trials per mode, order rotated each round; ratio = median over rounds of pkt/s / the same round's untraced pkt/s [min-max]\n",
		c.Rounds, c.Trial)
	rows := r.Rows()
	var cur Workload
	for _, row := range rows {
		if row.Workload != cur {
			cur = row.Workload
			fmt.Fprintf(w, "\n%s\n", workloadLabel[cur])
			fmt.Fprintf(w, "(the flood thread ran %.0f%% of the wall time, median over trials: the rest went to other tasks on its CPU and to the hypervisor)\n\n", 100*r.floodShare(cur))
			fmt.Fprintln(w, "| mode | pkt/s | ratio [min-max] | pkt/CPU-s | ratio | tracer CPU | peak RSS | ready | events written / lost |")
			fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|")
		}
		ratio := fmt.Sprintf("%.3f [%.3f-%.3f]", row.Ratio, row.RatioMin, row.RatioMax)
		cratio := fmt.Sprintf("%.3f", row.CPURatio)
		cpu, rss, ready, ev := "-", "-", "-", "-"
		switch row.Mode {
		case ModeNone:
			ratio, cratio = "1", "1"
		case ModeFloor:
		default:
			cpu = fmt.Sprintf("%.1f%%", 100*row.CPU)
			rss = fmt.Sprintf("%.1f MiB", float64(row.PeakRSS)/(1<<20))
			ready = fmt.Sprintf("%.0f ms", row.ReadyMs)
		}
		if e := row.Events; e != nil && row.Mode.streams() {
			ev = fmt.Sprintf("%s / %s of %s drops", si(float64(e.Written)), si(float64(e.Lost)), si(float64(e.Drops)))
			var why []string
			for _, p := range []struct {
				n    uint64
				name string
			}{{e.RateLimited, "rate-limited"}, {e.RingFull, "ring full"}, {e.Unread, "unread at exit"}, {e.WriteFailed, "write failed"}} {
				if p.n > 0 {
					why = append(why, fmt.Sprintf("%s %s", si(float64(p.n)), p.name))
				}
			}
			if len(why) > 0 {
				ev += " (" + strings.Join(why, ", ") + ")"
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", modeLabel[row.Mode], si(row.PPS), ratio, si(row.CPUPPS), cratio, cpu, rss, ready, ev)
	}
	if len(r.Stats) > 0 {
		fmt.Fprintf(w, "\nBPF program cost (one extra trial per mode with the kernel's run time accounting on, which adds its own clock reads; not in the ratios)\n\n")
		fmt.Fprintln(w, "| workload | mode | program | runs per datagram | ns per run |")
		fmt.Fprintln(w, "|---|---|---|---:|---:|")
		for _, t := range r.Stats {
			progs := append([]ProgCost(nil), t.Progs...)
			sort.Slice(progs, func(i, j int) bool { return progs[i].Name < progs[j].Name })
			for _, p := range progs {
				if p.Runs == 0 {
					continue
				}
				fmt.Fprintf(w, "| %s | %s | %s | %.2f | %.0f |\n", t.Workload, t.Mode, p.Name, float64(p.Runs)/float64(max(t.Sent, 1)), p.NsPerRun())
			}
		}
	}
	fmt.Fprintln(w)
	for _, v := range r.Verdicts() {
		fmt.Fprintln(w, v)
	}
	if r.Took > 0 {
		fmt.Fprintf(w, "\n(run took %s)\n", r.Took.Round(1e9))
	}
}

// floodShare is the median share of wall time the flood thread was on its CPU.
func (r *Report) floodShare(w Workload) float64 {
	var xs []float64
	for _, t := range r.Trials {
		if t.Workload == w && t.Elapsed > 0 {
			xs = append(xs, t.FloodCPU.Seconds()/t.Elapsed.Seconds())
		}
	}
	return median(xs)
}

// Targets droptrace's cost is held to (docs/performance.md).
const (
	TargetAggregate   = 0.97
	TargetEvents      = 0.90
	TargetEventsCPU   = 0.25
	TargetEventsRSSMB = 64
)

// Verdicts checks the targets; each line starts with "met", "MISSED" or "info".
func (r *Report) Verdicts() []string {
	rows := r.Rows()
	find := func(w Workload, m Mode) *Row {
		for i := range rows {
			if rows[i].Workload == w && rows[i].Mode == m {
				return &rows[i]
			}
		}
		return nil
	}
	var out []string
	say := func(ok bool, format string, args ...any) {
		v := "met   "
		if !ok {
			v = "MISSED"
		}
		out = append(out, v+" "+fmt.Sprintf(format, args...))
	}
	for _, w := range []Workload{WorkloadDrop, WorkloadDeliver} {
		a := find(w, ModeAggregate)
		if a == nil {
			continue
		}
		say(a.Ratio >= TargetAggregate, "%s: aggregate ratio %.3f >= %.2f (per CPU second %.3f)", w, a.Ratio, TargetAggregate, a.CPURatio)
		// The one-liner counts drops only: with no drops (deliver) it does nothing that
		// droptrace's NET_RX accounting could be compared with.
		if b := find(w, ModeBpftrace); b != nil && w == WorkloadDrop {
			say(a.Ratio >= b.Ratio, "%s: aggregate ratio %.3f >= bpftrace one-liner %.3f (per CPU second %.3f >= %.3f)", w, a.Ratio, b.Ratio, a.CPURatio, b.CPURatio)
		}
		if f := find(w, ModeFloor); f != nil {
			out = append(out, fmt.Sprintf("info   %s: empty programs at droptrace's tracepoints: ratio %.3f (per CPU second %.3f), the most any program there can reach", w, f.Ratio, f.CPURatio))
		}
	}
	if e := find(WorkloadDrop, ModeEvents); e != nil {
		say(e.Ratio >= TargetEvents, "drop: events (unlimited) ratio %.3f >= %.2f (per CPU second %.3f)", e.Ratio, TargetEvents, e.CPURatio)
		say(e.CPU <= TargetEventsCPU, "drop: events (unlimited) userspace %.1f%% of one CPU <= %.0f%%", 100*e.CPU, 100*TargetEventsCPU)
		say(float64(e.PeakRSS)/(1<<20) <= TargetEventsRSSMB, "drop: events (unlimited) peak RSS %.1f MiB <= %d MiB", float64(e.PeakRSS)/(1<<20), TargetEventsRSSMB)
	}
	for _, row := range rows {
		if e := row.Events; e != nil && row.Mode.streams() {
			say(e.Written+e.Lost >= e.Drops && e.DropRecords == e.Written,
				"%s/%s: every drop written or counted lost: %d drops, %d written (%d records in the files), %d lost",
				row.Workload, row.Mode, e.Drops, e.Written, e.DropRecords, e.Lost)
		}
	}
	return out
}
