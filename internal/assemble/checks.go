// SPDX-License-Identifier: Apache-2.0

package assemble

import (
	"fmt"
	"sort"

	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
)

// Checks reconciles a record's traced counts with the kernel's counters: rec is an interval
// record, or the sum of them, and ev the evidence summed with it.
func Checks(rec *record.Interval, ev *interval.Evidence, avail Availability) []record.Check {
	return reconcile.Checks(Reconcile(rec, ev, avail))
}

// Reconcile is the input of the checks of rec.
func Reconcile(rec *record.Interval, ev *interval.Evidence, avail Availability) reconcile.Input {
	in := reconcile.Input{
		Duration: ev.Duration,
		Drops:    avail.Drops, NetRx: avail.NetRx, Predict: avail.Predict,
		SysctlChanges:       rec.SysctlChanges,
		LimitsExact:         avail.LimitsExact,
		Slack:               ev.Slack,
		Softnet:             readable(ev.SoftnetErr, "/proc/net/softnet_stat"),
		Softirqs:            readable(ev.SoftirqsErr, "/proc/softirqs"),
		BacklogByCPU:        map[int]uint64{},
		DropRecursionMisses: rec.Tracer.DropRecursionMisses,
		AggMapFull:          rec.Tracer.AggMapFull,
		Unnamed:             avail.Unnamed,
		Located:             avail.Located,
	}
	for _, rc := range rec.CPUs {
		if n := rc.Drops[ReasonCPUBacklog]; n > 0 {
			in.BacklogByCPU[rc.CPU] = n
		}
		ic := reconcile.CPU{CPU: rc.CPU}
		if n := rc.NetRx; n != nil {
			ic.Runs, ic.BudgetSqueezes, ic.TimeSqueezes = n.Runs, n.BudgetSqueezes, n.TimeSqueezes
			ic.TimeUncertain, ic.TimeUnproven = n.TimeUncertain, n.TimeUnproven
		}
		ic.StaleRuns = ev.StaleRuns[rc.CPU]
		if k, ok := ev.KernelRuns[rc.CPU]; ok {
			ic.KernelRuns, ic.HasKernelRuns = k, true
		}
		if sn := rc.Softnet; sn != nil {
			ic.Softnet = &reconcile.Softnet{Dropped: sn.Dropped, TimeSqueeze: sn.TimeSqueeze}
		}
		in.CPUs = append(in.CPUs, ic)
	}
	inos := make([]uint32, 0, len(ev.Netns))
	for ino := range ev.Netns {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		ns := ev.Netns[ino]
		if ns.SNMP != nil {
			in.Netns = append(in.Netns, reconcile.Netns{Inode: ino, Name: ns.Name, Traced: ns.Traced, SNMP: ns.SNMP})
		}
		if len(ns.Unwatched) > 0 || ns.SNMP == nil && ns.Why != "" {
			why := ns.Why
			if why == "" {
				why = "counters unreadable for part of the session"
			}
			in.Netns = append(in.Netns, reconcile.Netns{Inode: ino, Name: ns.Name, Traced: ns.Unwatched, Why: why})
		}
	}
	return in
}

func readable(err error, what string) reconcile.Availability {
	if err != nil {
		return reconcile.Availability{Why: fmt.Sprintf("%s unreadable: %v", what, err)}
	}
	return reconcile.Availability{OK: true}
}
