// SPDX-License-Identifier: Apache-2.0

package session

import (
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// onlineCPUs reads /sys/devices/system/cpu/online ("0-3,5,7-8").
func onlineCPUs(fsys hostfs.FS) ([]int, error) {
	b, err := fsys.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return hostctx.ParseCPUList(strings.TrimSpace(string(b)))
}

// monoToWall converts CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) to wall time.
func monoToWall() func(uint64) time.Time {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	wall := time.Now()
	mono := uint64(ts.Nano())
	return func(ns uint64) time.Time {
		return wall.Add(time.Duration(int64(ns) - int64(mono)))
	}
}

// hostContext reads how the host is set up to receive: network IRQs and their affinity,
// irqbalance, RPS and threaded NAPI per interface, and the socket buffer limits. It returns
// the network IRQs by number too, and the set of them to follow.
func hostContext(fsys hostfs.FS, log *slog.Logger) (*record.HostContext, map[int]record.NetIRQ, map[int]bool) {
	hc := &record.HostContext{Irqbalance: hostctx.IrqbalanceRunning(fsys), Sysctls: map[string]string{}}
	info := map[int]record.NetIRQ{}
	follow := map[int]bool{}
	if irqs, err := hostfs.ReadParse(fsys, "/proc/interrupts", hostctx.ParseInterrupts); err == nil {
		for _, q := range hostctx.NetworkIRQs(fsys, irqs) {
			r := record.NetIRQ{IRQ: q.IRQ, Name: q.Name, Ifname: q.Ifname, Queue: q.Queue, RX: q.RX,
				Affinity: q.Affinity, Effective: q.Effective}
			hc.NetIRQs = append(hc.NetIRQs, r)
			info[q.IRQ] = r
			follow[q.IRQ] = true
		}
	} else {
		log.Warn("cannot read /proc/interrupts: IRQ layout verdicts are off", "err", err)
	}
	for _, f := range hostctx.Interfaces(fsys) {
		hc.Interfaces = append(hc.Interfaces, record.Interface{Name: f.Name, RxQueues: f.RxQueues,
			RPSCPUs: f.RPSCPUs, RPSFlowCnt: f.RPSFlowCnt, Threaded: f.Threaded})
	}
	tree := sysctl.On(fsys)
	for _, name := range []string{"net.core.rmem_default", "net.core.rmem_max", "net.core.somaxconn",
		"net.core.flow_limit_cpu_bitmap", "net.ipv4.udp_mem", "net.ipv4.tcp_mem"} {
		if v, err := tree.Read(name); err == nil {
			hc.Sysctls[strings.TrimPrefix(strings.TrimPrefix(name, "net.core."), "net.ipv4.")] = strings.Join(strings.Fields(v), " ")
		}
	}
	return hc, info, follow
}
