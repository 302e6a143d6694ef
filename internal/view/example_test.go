// SPDX-License-Identifier: Apache-2.0

package view_test

import (
	"fmt"
	"time"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/view"
)

func ExampleRender() {
	start := &record.Start{
		Hostname: "web-1", Kernel: "6.12.0", Mode: record.ModeFull, HZ: 1000,
		Sysctl: record.Sysctl{NetdevBudget: 300, NetdevBudgetUsecs: 8000, NetdevMaxBacklog: 1000},
	}
	iv := &record.Interval{
		Header:     record.Header{Type: record.TypeInterval, Time: record.Time(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))},
		Seq:        3,
		DurationMs: 1000,
		Drops:      map[string]uint64{"CPU_BACKLOG": 120},
		CPUs: []record.CPU{{
			CPU:     0,
			Drops:   map[string]uint64{"CPU_BACKLOG": 120},
			NetRx:   &record.NetRx{Runs: 900, KernelRuns: 900, BusyUs: 250000, Packets: 90000, TimeSqueezes: 4},
			Softnet: &record.Softnet{Dropped: 120, TimeSqueeze: 4},
		}},
		Checks: []record.Check{{Check: "backlog_drops", Status: record.StatusMatch}},
	}
	fmt.Print(view.Render(start, iv, view.Options{Width: 80}))
	// Output:
	// droptrace  host web-1  kernel 6.12.0  mode full  interval 3 (1s) at 03:04:05 UTC
	// netdev_budget=300  netdev_budget_usecs=8000  netdev_max_backlog=1000  HZ=1000
	//
	//     ------- traced drops --------  --- softnet ---  ------ NET_RX softirq ------
	// CPU  drops    /s  top reasons      dropped squeeze   busy polled  bud/time  seen
	//   0    120   120  CPU_BACKLOG 120      120       4  25.0%  90000       0/4
	// all    120   120                       120       4         90000       0/4
	// bud/time: predicted squeezes, netdev_budget hit / netdev_budget_usecs hit; seen:
	// NET_RX runs traced, if under 100%
	//
	// reasons   CPU_BACKLOG 120 (120/s)
	// checks    1 check matches
}
