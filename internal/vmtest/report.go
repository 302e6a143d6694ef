// SPDX-License-Identifier: Apache-2.0

package vmtest

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/droptrace/droptrace/internal/record"
)

// Write prints each run in detail, then one table line per run, then the closing line
// "vmtest: N passed, M failed" (kernels).
func Write(w io.Writer, runs []*Run) {
	for _, r := range runs {
		writeRun(w, r)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "kernel\tresult\trelease\twhere\ttime\tattach\tsoftnet\ttests\treason_source\treasons (code)\tscenario checks\treal NIC")
	passed := 0
	for _, r := range runs {
		result := "FAIL"
		if r.Passed() {
			result = "PASS"
			passed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, result, orDash(r.release()), r.where(),
			r.duration(), orDash(r.attach()), columns(r.Columns), r.testCount(), orDash(r.reasonSource()), orDash(r.reasonCodes(false)),
			orDash(r.checkCounts()), orDash(r.nic(false)))
	}
	tw.Flush()
	fmt.Fprintf(w, "vmtest: %d passed, %d failed\n", passed, len(runs)-passed)
}

func writeRun(w io.Writer, r *Run) {
	result := "PASS"
	if !r.Passed() {
		result = "FAIL"
	}
	fmt.Fprintf(w, "\n== %s: %s  kernel %s", r.Name, result, orDash(r.release()))
	if p := r.Meta["package"]; p != "" {
		fmt.Fprintf(w, " (Debian %s %s)", p, r.Meta["version"])
	}
	fmt.Fprintf(w, ", %s, %d CPUs, %s", r.where(), r.NCPU, r.duration())
	if f := r.Meta["fetch_seconds"]; f != "" {
		fmt.Fprintf(w, " (kernel package %ss of it)", f)
	}
	fmt.Fprintln(w)
	for _, bin := range Binaries {
		var parts []string
		for _, t := range r.Tests[bin] {
			parts = append(parts, fmt.Sprintf("%s %s %.1fs", t.Name, t.Status, t.Seconds))
		}
		fmt.Fprintf(w, "   %-8s %s.test exit %s: %s\n", "tests", bin, exit(r.RC[bin]), orDash(strings.Join(parts, ", ")))
	}
	fmt.Fprintf(w, "   %-8s %s in /proc/net/softnet_stat\n", "softnet", columns(r.Columns))
	fmt.Fprintf(w, "   %-8s %s\n", "reasons", orDash(r.reasonCodes(true)))
	if s, ok := r.Sessions[ScenarioSession]; ok && r.reasonSource() == record.ReasonSourceLocation {
		fmt.Fprintf(w, "   %-8s the kernel passes no drop reasons: droptrace named drops from their location (reason_source location)\n", "")
	} else if ok {
		fmt.Fprintf(w, "   %-8s droptrace named %d reasons from the kernel's BTF; ", "", s.Start.DropReasons)
		if len(r.Reasons) == 0 {
			fmt.Fprintln(w, "the kernel's skb:kfree_skb format has no reason table to compare with")
		} else {
			same, other := r.compareCodes()
			fmt.Fprintf(w, "the skb:kfree_skb format's table (%d reasons) gives %d decoded codes the same, %d others\n", len(r.Reasons), same, other)
		}
	}
	if p := r.Also; p != nil {
		var parts []string
		for _, t := range p.Tests {
			parts = append(parts, fmt.Sprintf("%s %s %.1fs", t.Name, t.Status, t.Seconds))
		}
		if s, ok := p.Sessions[ScenarioSession]; ok {
			for _, c := range s.Summary.Checks {
				parts = append(parts, checkString(c))
			}
		}
		fmt.Fprintf(w, "   %-8s e2e.test again with --%s, exit %s: %s\n", "also", p.Attach, exit(p.RC), orDash(strings.Join(parts, ", ")))
	}
	if nic := r.nic(true); nic != "" {
		fmt.Fprintf(w, "   %-8s %s\n", "nic", nic)
	}
	for _, name := range r.sessionNames() {
		s := r.Sessions[name]
		// The scenario's checks one by one; the other sessions' counted, with what did not match.
		var parts []string
		if name == ScenarioSession {
			for _, c := range s.Summary.Checks {
				parts = append(parts, checkString(c))
			}
		} else {
			for _, c := range s.Summary.Checks {
				if c.Status == record.StatusMismatch {
					parts = append(parts, checkString(c))
				}
			}
			if len(parts) > 0 {
				parts[0] = countChecks(s.Summary.Checks) + ": " + parts[0]
			} else {
				parts = []string{countChecks(s.Summary.Checks)}
			}
		}
		fmt.Fprintf(w, "   %-8s %s (%s): %s\n", "checks", name, s.Start.Mode, orDash(strings.Join(parts, ", ")))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "   %-8s %s\n", "problem", p)
	}
	if !r.Passed() && r.Console != "" {
		lines := strings.Split(strings.TrimRight(r.Console, "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(w, "   last lines of the console:\n")
		for _, l := range lines {
			fmt.Fprintf(w, "   | %s\n", l)
		}
	}
}

func checkString(c record.Check) string {
	name := c.Check
	if c.CPU != nil {
		name += "[cpu" + strconv.Itoa(*c.CPU) + "]"
	}
	s := name + " " + c.Status
	if c.Traced != nil && c.Kernel != nil {
		s += fmt.Sprintf(" %d/%d", *c.Traced, *c.Kernel)
	}
	return s
}

// nic sums up the real-NIC scenario: the CPU irq_concentration named and CPU 0's squeeze
// check, with (in detail) the prediction's split and bounds and what the host sent. Empty
// without that session.
func (r *Run) nic(detail bool) string {
	s, ok := r.Sessions[NICSession]
	if !ok {
		return ""
	}
	parts := []string{"no irq_concentration"}
	for _, v := range s.Summary.Verdicts {
		if v.ID == "irq_concentration" && v.CPU != nil {
			parts[0] = "irq_concentration cpu" + strconv.Itoa(*v.CPU)
		}
	}
	for _, c := range s.Summary.Checks {
		if c.Check == "time_squeeze" && c.CPU != nil && *c.CPU == 0 {
			parts = append(parts, checkString(c))
		}
	}
	if !detail {
		return strings.Join(parts, ", ")
	}
	for _, c := range s.Summary.CPUs {
		if c.CPU == 0 && c.NetRx != nil {
			n := c.NetRx
			parts = append(parts, fmt.Sprintf("predicted %d budget + %d time (%d unproven, %d uncertain), %d runs, %d packets",
				n.BudgetSqueezes, n.TimeSqueezes, n.TimeUnproven, n.TimeUncertain, n.Runs, n.Packets))
		}
	}
	if f := r.Meta["nic_flood"]; f != "" {
		parts = append(parts, "host: "+strings.TrimPrefix(f, "nicflood: "))
	}
	return strings.Join(parts, ", ")
}

// attach is how the scenario session attached skb:kfree_skb (tp_btf or tracepoint), and
// then how its second pass did.
func (r *Run) attach() string {
	var parts []string
	if s, ok := r.Sessions[ScenarioSession]; ok {
		parts = append(parts, s.Start.Probes[DropProbe])
	}
	if r.Also != nil {
		if s, ok := r.Also.Sessions[ScenarioSession]; ok {
			parts = append(parts, s.Start.Probes[DropProbe])
		}
	}
	return strings.Join(parts, "+")
}

// reasonSource is how the scenario session named its drops: its start record's
// reason_source, or "kernel" for a session recorded before that field, which decoded reasons.
func (r *Run) reasonSource() string {
	s, ok := r.Sessions[ScenarioSession]
	switch {
	case !ok:
		return ""
	case s.Start.ReasonSource == "" && s.Start.DropReasons > 0:
		return record.ReasonSourceKernel
	}
	return s.Start.ReasonSource
}

// reasonCodes lists the scenario's drop reasons as NAME=code, most drops first; with counts,
// each followed by its number of drops. A reason no drop record showed has code "?"; reasons
// named from their location have no code.
func (r *Run) reasonCodes(counts bool) string {
	s, ok := r.Sessions[ScenarioSession]
	if !ok {
		return ""
	}
	located := r.reasonSource() == record.ReasonSourceLocation
	codes := map[string]uint32{}
	for _, x := range r.Sessions {
		for n, c := range x.Codes {
			codes[n] = c
		}
	}
	names := make([]string, 0, len(s.Summary.Drops))
	for n := range s.Summary.Drops {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := s.Summary.Drops[names[i]], s.Summary.Drops[names[j]]
		return a > b || a == b && names[i] < names[j]
	})
	var parts []string
	for _, n := range names {
		code := "?"
		if c, ok := codes[n]; ok {
			code = strconv.FormatUint(uint64(c), 10)
		}
		p := n + "=" + code
		if located {
			p = n
		}
		if counts {
			p += fmt.Sprintf(" (%d drops)", s.Summary.Drops[n])
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// compareCodes counts the decoded reasons (drop records of every session) whose code the
// kernel's kfree_skb table gives too, and those it gives another code or does not list.
func (r *Run) compareCodes() (same, other int) {
	seen := map[string]bool{}
	for _, name := range r.sessionNames() {
		for reason, code := range r.Sessions[name].Codes {
			if seen[reason] {
				continue
			}
			seen[reason] = true
			if k, ok := r.Reasons[reason]; ok && k == code {
				same++
			} else {
				other++
			}
		}
	}
	return same, other
}

// checkCounts counts the scenario summary's checks by status: "8 match" or "7 match, 1 mismatch".
func (r *Run) checkCounts() string {
	s, ok := r.Sessions[ScenarioSession]
	if !ok {
		return ""
	}
	return countChecks(s.Summary.Checks)
}

func countChecks(checks []record.Check) string {
	n := map[string]int{}
	for _, c := range checks {
		n[c.Status]++
	}
	var parts []string
	for _, st := range []string{record.StatusMatch, record.StatusMismatch, record.StatusUnavailable} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Run) testCount() string {
	pass, all := 0, 0
	for _, bin := range Binaries {
		for _, t := range r.Tests[bin] {
			all++
			if t.Status == "PASS" {
				pass++
			}
		}
	}
	return fmt.Sprintf("%d/%d passed", pass, all)
}

func (r *Run) release() string {
	if r.Uname != "" {
		return r.Uname
	}
	return r.Meta["release"]
}

func (r *Run) where() string {
	if a := r.Meta["accel"]; a != "" {
		return r.Meta["where"] + "/" + a
	}
	return orDash(r.Meta["where"])
}

func (r *Run) duration() string {
	s, err := strconv.Atoi(r.Meta["seconds"])
	if err != nil {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}

func columns(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d columns", n)
}

func exit(rc int) string {
	if rc < 0 {
		return "none"
	}
	return strconv.Itoa(rc)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
