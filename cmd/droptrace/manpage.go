// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// manpageCommand is a hidden subcommand: `droptrace manpage` writes droptrace(1) in roff from
// the flag set and the usage text themselves, so the packaged man page cannot drift from
// --help (make deb runs it).
const manpageCommand = "manpage"

func runManpage(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "droptrace %s: unexpected argument %q\n", manpageCommand, args[0])
		return 2
	}
	var f flags
	writeManpage(stdout, newFlagSet(&f, io.Discard))
	return 0
}

func writeManpage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, ".TH DROPTRACE 1 \"\" \"droptrace %s\" \"User Commands\"\n", roff(version))
	fmt.Fprintln(w, ".SH NAME")
	fmt.Fprintln(w, `droptrace \- find the packet loss that interface counters never show`)
	fmt.Fprintln(w, ".SH SYNOPSIS")
	literal(w, usageSection("Usage:"))
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, roff("droptrace attributes every kernel packet drop to its reason, CPU, location, device and "+
		"network namespace, accounts the NET_RX softirq per CPU, and reconciles both with "+
		"/proc/net/softnet_stat and the SNMP counters. A tracing session needs root, or "+
		"CAP_BPF and CAP_PERFMON (see the systemd unit shipped with it for the full set); "+
		"without them it polls the kernel's counters only."))
	fmt.Fprintln(w, ".PP")
	fmt.Fprintln(w, roff("droptrace doctor says what this kernel and these privileges allow; droptrace analyze "+
		"reports on recordings made with --output, without root (droptrace analyze --help); "+
		"droptrace version names the build."))
	fmt.Fprintln(w, ".SH OPTIONS")
	fs.VisitAll(func(fl *pflag.Flag) {
		if fl.Hidden {
			return
		}
		name, usage := pflag.UnquoteUsage(fl)
		fmt.Fprintln(w, ".TP")
		head := `\fB\-\-` + roff(fl.Name) + `\fR`
		if fl.Shorthand != "" {
			head = `\fB\-` + roff(fl.Shorthand) + `\fR, ` + head
		}
		if name != "" {
			head += ` \fI` + roff(name) + `\fR`
		}
		fmt.Fprintln(w, head)
		if d := fl.DefValue; d != "" && d != "0" && d != "0s" && d != "false" && d != "[]" {
			usage += " (default " + d + ")"
		}
		fmt.Fprintln(w, roff(usage))
	})
	fmt.Fprintln(w, ".SH EXAMPLES")
	literal(w, usageSection("Examples:"))
	fmt.Fprintln(w, ".SH EXIT STATUS")
	for _, s := range [][2]string{
		{"0", "the session ended cleanly (--duration reached, SIGINT, SIGTERM) and its summary was written"},
		{"1", "a failure: the output cannot be opened, the metrics address cannot be bound, the session cannot start"},
		{"2", "a usage error: an unknown flag, a value out of range, an output file droptrace refuses to write"},
		{"3", "the session ran to its end but could not write every record to its output (a full disk)"},
	} {
		fmt.Fprintf(w, ".TP\n.B %s\n%s\n", s[0], roff(s[1]))
	}
	fmt.Fprintln(w, ".SH SEE ALSO")
	fmt.Fprintln(w, roff("The documentation in /usr/share/doc/droptrace (README.md, docs/).")+
		"\n.BR ip (8),\n.BR ethtool (8),\n.BR sar (1)")
}

// usageSection is the indented block after header in the usage text, dedented.
func usageSection(header string) []string {
	_, rest, _ := strings.Cut(usage, header+"\n")
	var out []string
	for _, l := range strings.Split(rest, "\n") {
		if strings.TrimSpace(l) == "" {
			break
		}
		out = append(out, strings.TrimPrefix(l, "  "))
	}
	return out
}

// literal writes lines as an unfilled block.
func literal(w io.Writer, lines []string) {
	fmt.Fprintln(w, ".nf")
	for _, l := range lines {
		fmt.Fprintln(w, roff(l))
	}
	fmt.Fprintln(w, ".fi")
}

// roff escapes text for a roff line: backslashes, hyphens (as minus signs, which is what flag
// names need), and a leading period or quote that would make it a request.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
