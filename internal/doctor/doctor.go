// SPDX-License-Identifier: Apache-2.0

// Package doctor probes what this kernel and these privileges allow droptrace to do, and says
// how to fix what is missing. What decides a session's mode is internal/probe, the same
// function a session starts from.
package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/probe"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/softirqs"
	"github.com/droptrace/droptrace/internal/softnet"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/textfmt"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Levels of a result.
const (
	OK   = "ok"
	Warn = "degraded"
	Fail = "fail"
)

// Result is one probe.
type Result struct {
	Name   string `json:"name"`
	Level  string `json:"level"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Report is every probe, and whether a tracing session can run.
type Report struct {
	Results    []Result `json:"results"`
	CanTrace   bool     `json:"can_trace"`
	CanCounter bool     `json:"can_count"`
}

// Linux capability numbers (include/uapi/linux/capability.h).
const (
	capNetAdmin    = 12
	capSysAdmin    = 21
	capSysResource = 24
	capPerfmon     = 38
	capBPF         = 39
)

// Run performs every probe of the host whose /proc and /sys are fsys. Loading BPF programs is
// part of it: it is the only honest test.
func Run(fsys hostfs.FS) Report {
	var r Report
	add := func(name, level, detail, fix string) {
		r.Results = append(r.Results, Result{Name: name, Level: level, Detail: detail, Fix: fix})
	}

	caps, err := effectiveCaps(fsys, "/proc/self/status")
	switch {
	case err != nil:
		add("privileges", Warn, err.Error(), "")
	case has(caps, capBPF) && has(caps, capPerfmon) || has(caps, capSysAdmin):
		add("privileges", OK, fmt.Sprintf("uid %d, CapEff %#x (BPF and perfmon allowed)", os.Geteuid(), caps), "")
	default:
		add("privileges", Fail, fmt.Sprintf("uid %d, CapEff %#x lacks CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)", os.Geteuid(), caps),
			"run with sudo, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE")
	}

	tf := checkTracefs(fsys)
	add("tracefs", tf.Level, tf.Detail, tf.Fix)

	if _, err := fsys.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		add("btf", OK, "/sys/kernel/btf/vmlinux", "")
	} else {
		add("btf", Warn, "no kernel BTF: tp_btf programs and CO-RE relocations are refused, drop reasons cannot be named",
			"use a kernel built with CONFIG_DEBUG_INFO_BTF=y")
	}

	if b, err := fsys.ReadFile("/sys/kernel/security/lockdown"); err == nil {
		mode := lockdownMode(string(b))
		if mode == "confidentiality" {
			add("lockdown", Fail, "lockdown=confidentiality: BPF cannot read kernel memory", "boot with lockdown=integrity or none")
		} else {
			add("lockdown", OK, mode, "")
		}
	}

	// The same probe a session starts from: what it finds here is the mode a session runs in.
	host, tr := probe.Open(fsys, tracer.Options{}, false)
	if tr != nil {
		tr.Close()
	}
	level, detail := reasonsLine(host)
	add("drop reasons", level, detail, "")

	f := featureResult(Features)
	add(f.Name, f.Level, f.Detail, f.Fix)

	if err := host.SymsErr; err != nil {
		add("kallsyms", Warn, err.Error()+": drop locations are shown as addresses", "run as root (kernel.kptr_restrict hides addresses)")
	} else {
		add("kallsyms", OK, "text symbols readable", "")
	}

	switch host.HZSource {
	case probe.HZKconfig:
		add("hz", OK, fmt.Sprintf("HZ=%d (kernel config)", host.HZ), "")
	case probe.HZMeasured:
		add("hz", OK, fmt.Sprintf("HZ=%d (measured with bpf_jiffies64; no kernel config found)", host.HZ), "")
	default:
		add("hz", Warn, fmt.Sprintf("HZ unknown (%v): time squeezes are not predicted", host.HZErr),
			"provide /proc/config.gz (CONFIG_IKCONFIG_PROC) or /boot/config-$(uname -r)")
	}

	if nc, err := sysctl.On(fsys).ReadNetCore(); err == nil {
		add("sysctls", OK, fmt.Sprintf("netdev_budget=%d netdev_budget_usecs=%d netdev_max_backlog=%d dev_weight=%d",
			nc.Budget, nc.BudgetUsecs, nc.MaxBacklog, nc.DevWeight), "")
	} else {
		add("sysctls", Warn, err.Error(), "")
	}

	if host.TraceErr != nil {
		add("bpf programs", Fail, host.TraceErr.Error(), "run as root; see the privileges, btf and tracefs lines above")
	}
	for _, p := range host.Probes {
		level := OK
		if !p.OK {
			level = Warn
		}
		add("attach "+p.Name, level, p.Status, "")
	}
	r.CanTrace = host.Mode == record.ModeFull

	if t, err := hostfs.ReadParse(fsys, "/proc/net/softnet_stat", softnet.Parse); err != nil {
		add("softnet_stat", Fail, err.Error(), "")
	} else {
		r.CanCounter = true
		src := "CPU ids from column 13"
		if len(t.CPUs) > 0 && !t.CPUs[0].CPUFromKernel {
			src = "no CPU id column: line number taken as CPU id (wrong if CPUs are offline)"
		}
		add("softnet_stat", OK, fmt.Sprintf("%d columns, %d CPUs, %s", t.Columns, len(t.CPUs), src), "")
	}
	if _, err := hostfs.ReadParse(fsys, "/proc/softirqs", softirqs.Parse); err != nil {
		add("softirqs", Warn, err.Error()+": NET_RX coverage cannot be checked", "")
	} else {
		add("softirqs", OK, "/proc/softirqs NET_RX readable", "")
	}
	if _, err := hostfs.ReadParse(fsys, "/proc/net/snmp", snmp.Parse); err != nil {
		add("snmp", Warn, err.Error(), "")
	} else {
		add("snmp", OK, "/proc/net/snmp readable", "")
	}
	if list, err := netns.List(); err != nil {
		add("netns", Warn, err.Error()+": socket checks cover droptrace's own namespace only", "")
	} else {
		add("netns", OK, fmt.Sprintf("%d network namespaces found", len(list)), "")
	}
	return r
}

// tracefsDirs are where tracefs is found, in order of preference.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// checkTracefs tells a tracefs that is not mounted from one this user may not read: both fail
// to show events/, and the fixes differ (mount it; run as root).
func checkTracefs(fsys hostfs.FS) Result {
	var denied string
	for _, dir := range tracefsDirs {
		_, err := fsys.Stat(dir + "/events")
		switch {
		case err == nil:
			return Result{Name: "tracefs", Level: OK, Detail: dir}
		case errors.Is(err, fs.ErrPermission) && denied == "":
			denied = dir
		}
	}
	if denied != "" {
		where := denied + " is not readable"
		if mountedTracefs(fsys, denied) {
			where = "mounted at " + denied + " but not readable"
		}
		return Result{Name: "tracefs", Level: Warn,
			Detail: fmt.Sprintf("%s by uid %d: classic tracepoints cannot attach (tp_btf still can)", where, os.Geteuid()),
			Fix:    "run with sudo"}
	}
	return Result{Name: "tracefs", Level: Warn, Detail: "not mounted: classic tracepoints cannot attach (tp_btf still can)",
		Fix: "mount -t tracefs nodev /sys/kernel/tracing"}
}

// mountedTracefs says whether /proc/self/mountinfo has a tracefs at dir.
func mountedTracefs(fsys hostfs.FS, dir string) bool {
	b, err := fsys.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// "36 35 0:30 / /sys/kernel/tracing rw,nosuid - tracefs tracefs rw": the mount point
		// is field 5, the type the first field after "-".
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[4] != dir {
			continue
		}
		for i, v := range f {
			if v == "-" && i+1 < len(f) && f[i+1] == "tracefs" {
				return true
			}
		}
	}
	return false
}

func has(caps uint64, c uint) bool { return caps&(1<<c) != 0 }

func effectiveCaps(fsys hostfs.FS, path string) (uint64, error) {
	b, err := fsys.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("%s: no CapEff line", path)
}

// lockdownMode picks the bracketed mode from "none [integrity] confidentiality".
func lockdownMode(s string) string {
	if i := strings.Index(s, "["); i >= 0 {
		if j := strings.Index(s[i:], "]"); j > 0 {
			return s[i+1 : i+j]
		}
	}
	return strings.TrimSpace(s)
}

// Print writes the report as an aligned table. Details quote the host (errors naming paths
// and what a /proc or /sys file held, probe statuses), so every string is shown escaped
// (textfmt.Terminal).
func (r Report) Print(w io.Writer) {
	r = textfmt.Safe(r)
	for _, res := range r.Results {
		fmt.Fprintf(w, "%-10s %-25s %s\n", "["+res.Level+"]", res.Name, res.Detail)
		if res.Fix != "" {
			fmt.Fprintf(w, "%-10s %-25s fix: %s\n", "", "", res.Fix)
		}
	}
	switch {
	case r.CanTrace:
		fmt.Fprintln(w, "\nverdict: tracing is possible (mode full)")
	case r.CanCounter:
		fmt.Fprintln(w, "\nverdict: tracing is NOT possible; droptrace would run counters-only (softnet_stat, softirqs, snmp)")
	default:
		fmt.Fprintln(w, "\nverdict: neither tracing nor counters are available")
	}
}

// reasonsLine says how a session names drops on this host, and which names it infers.
func reasonsLine(host probe.Host) (level, detail string) {
	switch err := host.ReasonsErr; {
	case errors.Is(err, dropreason.ErrNoEnum):
		return Warn, "kernel has no enum skb_drop_reason (before 5.17): drops are named from their location instead"
	case err != nil:
		return Warn, err.Error()
	case len(host.Inferred) > 0:
		return Warn, fmt.Sprintf("%d reasons decoded from BTF, without %s (added in 5.18): drops the kernel frees as NOT_SPECIFIED are named from their location where it gives a reason (reason_source kernel+location)",
			host.Reasons.Len(), strings.Join(host.Inferred, ", "))
	}
	return OK, fmt.Sprintf("%d reasons decoded from BTF", host.Reasons.Len())
}
