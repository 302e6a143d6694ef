// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"path/filepath"
	"sort"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/record"
)

// Comparison sets recordings side by side. Every row has one value per recording, in the
// order of Files; null where a recording has no such number. Counts are per second, since
// sessions rarely last equally long.
type Comparison struct {
	Files []string `json:"files"`
	// Settings are the net.core sysctls at the start and at the end of each session (they
	// differ when they were changed during it).
	Settings []Setting    `json:"settings"`
	Rates    []Row        `json:"rates"`
	Reasons  []Row        `json:"reasons"`
	CPUs     []CPURow     `json:"cpus"`
	Verdicts []VerdictRow `json:"verdicts"`
}

// Row is one number across the recordings.
type Row struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"`
}

// Setting is one net.core sysctl across the recordings.
type Setting struct {
	Name  string  `json:"name"`
	Start []int64 `json:"start"`
	End   []int64 `json:"end"`
}

// CPURow is one CPU's rates across the recordings.
type CPURow struct {
	CPU                  int        `json:"cpu"`
	DropsPerSec          []*float64 `json:"drops_per_sec"`
	BacklogDroppedPerSec []*float64 `json:"backlog_dropped_per_sec"`
	SqueezesPerSec       []*float64 `json:"squeezes_per_sec"`
}

// VerdictRow is one verdict (by id and CPU) across the recordings: its severity in each, null
// where it did not fire.
type VerdictRow struct {
	ID       string    `json:"id"`
	CPU      *int      `json:"cpu,omitempty"`
	Severity []*string `json:"severity"`
}

// Compare sets two or more reports side by side.
func Compare(reports []*Report) *Comparison {
	c := &Comparison{}
	n := len(reports)
	for _, r := range reports {
		c.Files = append(c.Files, filepath.Base(r.File))
	}
	row := func(name string, f func(r *Report) *float64) Row {
		out := Row{Name: name, Values: make([]*float64, n)}
		for i, r := range reports {
			out.Values[i] = f(r)
		}
		return out
	}
	setting := func(name string, get func(s record.Sysctl) int64) Setting {
		st := Setting{Name: name}
		for _, r := range reports {
			end := r.Start.Sysctl
			if r.Summary.Sysctl != nil {
				end = *r.Summary.Sysctl
			}
			st.Start = append(st.Start, get(r.Start.Sysctl))
			st.End = append(st.End, get(end))
		}
		return st
	}
	c.Settings = []Setting{
		setting("netdev_budget", func(s record.Sysctl) int64 { return s.NetdevBudget }),
		setting("netdev_budget_usecs", func(s record.Sysctl) int64 { return s.NetdevBudgetUsecs }),
		setting("netdev_max_backlog", func(s record.Sysctl) int64 { return s.NetdevMaxBacklog }),
		setting("dev_weight", func(s record.Sysctl) int64 { return s.DevWeight }),
	}
	rate := func(get func(t Totals) *uint64) func(r *Report) *float64 {
		return func(r *Report) *float64 {
			v := get(r.Totals)
			if v == nil {
				return nil
			}
			return ptr(perSec(*v, r.Totals.DurationMs))
		}
	}
	c.Rates = []Row{
		row("drops_per_sec", func(r *Report) *float64 { return ptr(r.Totals.DropsPerSec) }),
		row("drops_pct", func(r *Report) *float64 { return r.Totals.DropsPct }),
		row("processed_per_sec", rate(func(t Totals) *uint64 { return t.Processed })),
		row("backlog_dropped_per_sec", rate(func(t Totals) *uint64 { return t.BacklogDropped })),
		row("squeezes_per_sec", rate(func(t Totals) *uint64 { return t.Squeezes })),
		row("budget_squeezes_per_sec", rate(func(t Totals) *uint64 { return t.BudgetSqueezes })),
		row("time_squeezes_per_sec", rate(func(t Totals) *uint64 { return t.TimeSqueezes })),
		row("lost_events_per_sec", func(r *Report) *float64 { return ptr(perSec(r.Totals.LostEvents, r.Totals.DurationMs)) }),
	}

	// Reasons by their largest rate in any recording, so what mattered before or after
	// comes first; a reason absent from a recording is 0 there, not unknown, when that
	// recording traced drops at all.
	best := map[string]float64{}
	for _, r := range reports {
		for _, rs := range r.Reasons {
			best[rs.Reason] = max(best[rs.Reason], rs.PerSec)
		}
	}
	reasons := make([]string, 0, len(best))
	for k := range best {
		reasons = append(reasons, k)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if best[reasons[i]] != best[reasons[j]] {
			return best[reasons[i]] > best[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	for _, reason := range reasons {
		c.Reasons = append(c.Reasons, row(reason, func(r *Report) *float64 {
			if r.Start.Mode == record.ModeCountersOnly {
				return nil
			}
			return ptr(perSec(r.Summary.Drops[reason], r.Totals.DurationMs))
		}))
	}
	if c.Reasons == nil {
		c.Reasons = []Row{}
	}

	cpuSet := map[int]bool{}
	for _, r := range reports {
		for _, cs := range r.CPUs {
			cpuSet[cs.CPU.CPU] = true
		}
	}
	c.CPUs = []CPURow{}
	for _, id := range sortedInts(cpuSet) {
		cr := CPURow{CPU: id, DropsPerSec: make([]*float64, n), BacklogDroppedPerSec: make([]*float64, n), SqueezesPerSec: make([]*float64, n)}
		for i, r := range reports {
			for _, cs := range r.CPUs {
				if cs.CPU.CPU != id {
					continue
				}
				if r.Start.Mode != record.ModeCountersOnly {
					cr.DropsPerSec[i] = ptr(cs.DropsPerSec)
				}
				if sn := cs.Softnet; sn != nil {
					cr.BacklogDroppedPerSec[i] = ptr(perSec(sn.Dropped, r.Totals.DurationMs))
					cr.SqueezesPerSec[i] = ptr(perSec(sn.TimeSqueeze, r.Totals.DurationMs))
				}
			}
		}
		c.CPUs = append(c.CPUs, cr)
	}

	type vkey struct {
		id  string
		cpu int // -1: host-wide
	}
	rows := map[vkey]*VerdictRow{}
	var order []vkey
	worst := map[vkey]int{}
	for i, r := range reports {
		for _, v := range r.Verdicts {
			k := vkey{v.ID, -1}
			if v.CPU != nil {
				k.cpu = *v.CPU
			}
			vr := rows[k]
			if vr == nil {
				vr = &VerdictRow{ID: v.ID, CPU: v.CPU, Severity: make([]*string, n)}
				rows[k] = vr
				order = append(order, k)
			}
			// Two verdicts of one id on one CPU, which no rule emits, would show the worse.
			if vr.Severity[i] == nil || explain.SeverityRank(v.Severity) > explain.SeverityRank(*vr.Severity[i]) {
				vr.Severity[i] = ptr(v.Severity)
			}
			worst[k] = max(worst[k], explain.SeverityRank(v.Severity))
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if worst[a] != worst[b] {
			return worst[a] > worst[b]
		}
		if a.id != b.id {
			return a.id < b.id
		}
		return a.cpu < b.cpu
	})
	c.Verdicts = []VerdictRow{}
	for _, k := range order {
		c.Verdicts = append(c.Verdicts, *rows[k])
	}
	return c
}
