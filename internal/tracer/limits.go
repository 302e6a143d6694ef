// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// The NET_RX programs read netdev_budget and netdev_budget_usecs from the kernel's own
// variables at the start of each run, once they know where those are (bpf/netrx.c learns it
// from the sysctl table entries, on fentry of proc_dointvec and proc_dointvec_minmax). Until
// then, and where fentry is unavailable, they use what SetNetRx gave them.

// LimitsProbe names the probe that learns where the limits are.
const LimitsProbe = "net_rx_limits"

// limitsProgs are the programs that learn the limits' addresses.
var limitsProgs = []struct{ fn, prog string }{
	{"proc_dointvec", netrxProgFentryProcDointvec},
	{"proc_dointvec_minmax", netrxProgFentryProcDointvecMinmax},
}

// openLimits attaches the learning programs, all or none; failing, the NET_RX programs keep
// the limits user space polls, and the probe says why.
func (t *Tracer) openLimits(spec *ebpf.CollectionSpec, maps map[string]*ebpf.Map) {
	// --tracepoint stands for kernels without BTF attachment, which have no fentry either.
	if t.opts.ForceTracepoint {
		t.probes = append(t.probes, Probe{Name: LimitsProbe, Status: "off"})
		return
	}
	var attached []link.Link
	var progs []*ebpf.Program
	fail := func(fn string, err error) {
		for _, l := range attached {
			l.Close()
		}
		for _, p := range progs {
			p.Close()
		}
		why := hint(err)
		// The NET_RX programs loaded, so privileges are not what is missing.
		if errors.Is(err, os.ErrPermission) {
			why = "the kernel refused fentry though the tracepoint programs loaded (BPF trampolines off, or a security policy)"
		}
		t.probes = append(t.probes, Probe{Name: LimitsProbe, Status: fmt.Sprintf("unavailable: fentry/%s: %s", fn, why)})
	}
	for _, lp := range limitsProgs {
		p, err := loadProgram(spec, lp.prog, maps)
		if err != nil {
			fail(lp.fn, err)
			return
		}
		progs = append(progs, p)
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			fail(lp.fn, err)
			return
		}
		attached = append(attached, l)
	}
	t.links = append(t.links, attached...)
	for _, p := range progs {
		t.closers = append(t.closers, p.Close)
	}
	t.limits = true
	t.probes = append(t.probes, Probe{Name: LimitsProbe, Status: "fentry", OK: true})
}

// KernelLimits says which limits the NET_RX programs read from the kernel's variables at each
// run: those whose addresses they learnt (a read of the sysctl file teaches it).
func (t *Tracer) KernelLimits() (budget, usecs bool, err error) {
	if !t.netrx || !t.limits {
		return false, false, nil
	}
	var lim netrxNetrxLimits
	if err := t.netrxM.NetrxLim.Lookup(uint32(0), &lim); err != nil {
		return false, false, fmt.Errorf("read NET_RX limits map: %w", err)
	}
	return lim.BudgetAddr != 0, lim.UsecsAddr != 0, nil
}
