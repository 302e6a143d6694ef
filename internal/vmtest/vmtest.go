// SPDX-License-Identifier: Apache-2.0

// Package vmtest judges and reports the kernel tests that scripts/vmtest.sh runs: for each
// kernel, a directory with what the run left (see Load), from which it decides pass or fail and
// says which tests passed, which checks matched, which softnet_stat layout the kernel has and
// which codes its kernel gave the drop reasons droptrace decoded.
//
// A guest is trusted only as far as it proves itself: a run passes when the guest printed the
// PASS marker, sent a complete report, every test binary exited 0, the scenario's tests ran
// (not skipped), and droptrace's view of the kernel agrees with the kernel's own files (softnet
// columns, the release, each decoded reason's code in the skb:kfree_skb format).
package vmtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// Marker is the line the guest's init prints last; the word after it is PASS or FAIL (and why).
const Marker = "VMTEST-RESULT: "

// Binaries are the test binaries every run executes, in order.
var Binaries = []string{"netlab", "e2e"}

// Required are the tests that must pass, not skip: they are the real scenario.
var Required = []string{
	"TestPrivScenarioReproduces",
	"TestPrivHiddenLossReconciles",
	"TestPrivTimeSqueezesTellTheirCause",
}

// RequiredInGuest must pass too in a guest: the real-NIC scenario needs the host's flood
// through qemu's user network; the captures test each kernel's BPF packet copy (read there
// with the pcapng library: the guest has no tshark).
var RequiredInGuest = []string{NICSession, "TestPrivPcapHiddenLoss", "TestPrivPcapIPv6AndRawIP"}

// NICSession is the real-NIC scenario's session (a virtio-net NIC whose interrupts are all on
// CPU 0, flooded by the host), whose verdict and CPU 0 squeezes the report shows.
const NICSession = "TestVMRealNIC"

// DropProbe is the tracepoint whose attachment the report shows: tp_btf, or the classic
// tracepoint on a run that forces it.
const DropProbe = "skb:kfree_skb"

// ScenarioSession is the session whose summary the report details.
const ScenarioSession = "TestPrivHiddenLossReconciles"

// Test is one top-level test's outcome from `-test.v` output.
type Test struct {
	Name    string
	Status  string // PASS, FAIL, SKIP
	Seconds float64
}

// Session is one droptrace session kept by the e2e tests (DROPTRACE_E2E_REPORT).
type Session struct {
	Name    string
	Start   record.Start
	Summary *record.Interval
	Codes   map[string]uint32 // reason name -> code, from the session's drop records
}

// Run is everything one kernel's run left behind.
type Run struct {
	Name     string
	Meta     map[string]string // from the host script: where, package, version, release, seconds, ...
	Console  string            // the guest's serial console (empty on the host)
	Marker   string            // what followed Marker on the console, if it was printed
	Bundle   bool              // the report arrived (guest) or was written (host)
	Uname    string
	NCPU     int
	Columns  int               // columns of /proc/net/softnet_stat, as read by the script
	Reasons  map[string]uint32 // the kernel's own reason table, from the kfree_skb format
	RC       map[string]int    // test binary -> exit code (-1: no exit code)
	Tests    map[string][]Test // test binary -> top-level tests
	Sessions map[string]*Session
	// Also is the scenario's second pass in the same boot through other probes (option
	// also-tracepoint in scripts/vmtest-kernels); nil without one.
	Also     *Pass
	Problems []string // why it failed; empty means it passed
}

// Pass is a second pass of the hidden-loss scenario, attaching skb:kfree_skb as Attach: its
// e2e.test exit code, tests and kept sessions (report/e2e-<attach>.log, .rc and
// report/sessions-<attach>/).
type Pass struct {
	Attach   string
	RC       int
	Tests    []Test
	Sessions map[string]*Session
}

// Passed says whether the run passed.
func (r *Run) Passed() bool { return len(r.Problems) == 0 }

// Load reads one kernel's result directory:
//
//	meta                   KEY=VALUE lines from the host script (where=qemu|host, rc, timed_out, ...)
//	console.log            the guest's serial console (qemu runs)
//	report/uname, nproc, softnet_stat, kfree_skb_format
//	report/<binary>.log    -test.v output, report/<binary>.rc its exit code
//	report/sessions/*.jsonl  the e2e sessions' start, summary and first drop of each reason
//
// and judges it. Missing files are problems, not errors: a guest that died leaves little.
func Load(dir string) *Run {
	r := &Run{
		Name: filepath.Base(dir), Meta: map[string]string{}, RC: map[string]int{},
		Tests: map[string][]Test{}, Sessions: map[string]*Session{},
	}
	if b, err := os.ReadFile(filepath.Join(dir, "meta")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				r.Meta[k] = v
			}
		}
	}
	if n := r.Meta["name"]; n != "" {
		r.Name = n
	}
	if b, err := os.ReadFile(filepath.Join(dir, "console.log")); err == nil {
		r.Console = string(b)
		for _, line := range strings.Split(r.Console, "\n") {
			if i := strings.Index(line, Marker); i >= 0 {
				r.Marker = strings.TrimSpace(line[i+len(Marker):])
			}
		}
	}
	rep := filepath.Join(dir, "report")
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(rep, name))
		return strings.TrimSpace(string(b))
	}
	r.Uname = read("uname")
	r.Bundle = r.Uname != ""
	r.NCPU, _ = strconv.Atoi(read("nproc"))
	r.Columns = softnetColumns(read("softnet_stat"))
	r.Reasons = kernelReasons(read("kfree_skb_format"))
	for _, bin := range Binaries {
		r.RC[bin] = -1
		if s := read(bin + ".rc"); s != "" {
			r.RC[bin], _ = strconv.Atoi(s)
		}
		r.Tests[bin] = parseTests(read(bin + ".log"))
	}
	r.Sessions = r.loadSessions(filepath.Join(rep, "sessions"))
	if a := r.Meta["also"]; a != "" {
		r.Also = &Pass{Attach: a, RC: -1, Tests: parseTests(read("e2e-" + a + ".log")),
			Sessions: r.loadSessions(filepath.Join(rep, "sessions-"+a))}
		if s := read("e2e-" + a + ".rc"); s != "" {
			r.Also.RC, _ = strconv.Atoi(s)
		}
	}
	r.judge()
	return r
}

// loadSessions reads the sessions kept in dir; one that cannot be read is a problem.
func (r *Run) loadSessions(dir string) map[string]*Session {
	out := map[string]*Session{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range files {
		s, err := loadSession(f)
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
			continue
		}
		out[s.Name] = s
	}
	return out
}

var testLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) \(([0-9.]+)s\)`)

func parseTests(log string) []Test {
	var ts []Test
	for _, line := range strings.Split(log, "\n") {
		if m := testLine.FindStringSubmatch(line); m != nil {
			sec, _ := strconv.ParseFloat(m[3], 64)
			ts = append(ts, Test{Name: m[2], Status: m[1], Seconds: sec})
		}
	}
	return ts
}

// softnetColumns is the number of columns of the first line of /proc/net/softnet_stat.
func softnetColumns(s string) int {
	line, _, _ := strings.Cut(s, "\n")
	return len(strings.Fields(line))
}

var symbolic = regexp.MustCompile(`\{ *(\d+), *"([A-Za-z0-9_:]+)" *\}`)

// kernelReasons reads the reason table of skb:kfree_skb's print fmt: __print_symbolic(REC->reason,
// { 2, "NOT_SPECIFIED" }, ...), with the numbers the kernel's own enum gives them.
func kernelReasons(format string) map[string]uint32 {
	_, fmtLine, ok := strings.Cut(format, "print fmt:")
	if !ok {
		return nil
	}
	m := map[string]uint32{}
	for _, g := range symbolic.FindAllStringSubmatch(fmtLine, -1) {
		if v, err := strconv.ParseUint(g[1], 10, 32); err == nil {
			m[g[2]] = uint32(v)
		}
	}
	return m
}

func loadSession(path string) (*Session, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &Session{Name: strings.TrimSuffix(filepath.Base(path), ".jsonl"), Codes: map[string]uint32{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var h record.Header
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
			return nil, fmt.Errorf("session %s: %v", s.Name, err)
		}
		switch h.Type {
		case record.TypeStart:
			err = json.Unmarshal(sc.Bytes(), &s.Start)
		case record.TypeSummary:
			s.Summary = &record.Interval{}
			err = json.Unmarshal(sc.Bytes(), s.Summary)
		case record.TypeDrop:
			var d record.Drop
			if err = json.Unmarshal(sc.Bytes(), &d); err == nil {
				s.Codes[d.Reason] = d.ReasonCode
			}
		}
		if err != nil {
			return nil, fmt.Errorf("session %s: %v", s.Name, err)
		}
	}
	if s.Summary == nil {
		return nil, fmt.Errorf("session %s has no summary", s.Name)
	}
	return s, sc.Err()
}

func (r *Run) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Run) judge() {
	if r.Meta["timed_out"] == "1" {
		r.problem("killed after the time limit (VMTEST_TIMEOUT)")
	}
	if r.Meta["where"] == "qemu" {
		switch {
		case r.Marker == "":
			r.problem("the guest printed no %q marker: it panicked, hung or never reached init (see console.log)", strings.TrimSpace(Marker))
		case r.Marker != "PASS":
			r.problem("the guest says %s", r.Marker)
		}
	}
	if !r.Bundle {
		r.problem("no report from the run")
		return
	}
	if r.NCPU < 2 {
		r.problem("%d CPUs: the RPS scenario needs two", r.NCPU)
	}
	for _, bin := range Binaries {
		if r.RC[bin] != 0 {
			r.problem("%s.test exited %d", bin, r.RC[bin])
		}
		for _, t := range r.Tests[bin] {
			switch {
			case t.Status == "FAIL":
				r.problem("%s failed", t.Name)
			case t.Status == "SKIP" && strings.HasPrefix(t.Name, "TestPriv"):
				r.problem("%s skipped: privileged tests must run here", t.Name)
			}
		}
	}
	required := Required
	if r.Meta["where"] == "qemu" {
		required = append(required[:len(required):len(required)], RequiredInGuest...)
	}
	for _, name := range required {
		if !r.hasPassed(name) {
			r.problem("%s did not pass", name)
		}
	}
	if len(r.Sessions) == 0 {
		r.problem("no droptrace session was kept (DROPTRACE_E2E_REPORT)")
	}
	if _, ok := r.Sessions[ScenarioSession]; !ok {
		r.problem("no session of %s", ScenarioSession)
	}
	if p := r.Also; p != nil {
		passed := passedIn(p.Tests, ScenarioSession)
		s, ok := p.Sessions[ScenarioSession]
		switch {
		case p.RC != 0:
			r.problem("the --%s pass: e2e.test exited %d", p.Attach, p.RC)
		case !passed:
			r.problem("the --%s pass: %s did not pass", p.Attach, ScenarioSession)
		case !ok:
			r.problem("the --%s pass kept no session of %s", p.Attach, ScenarioSession)
		case s.Start.Probes[DropProbe] != p.Attach:
			r.problem("the --%s pass: %s attached as %q", p.Attach, DropProbe, s.Start.Probes[DropProbe])
		}
	}
	for _, name := range r.sessionNames() {
		s := r.Sessions[name]
		// A run asked to attach the classic tracepoints (meta attach=tracepoint) must have.
		if want := r.Meta["attach"]; want != "" && s.Start.Mode == record.ModeFull && s.Start.Probes[DropProbe] != want {
			r.problem("%s: %s attached as %q, the run asked for %q", name, DropProbe, s.Start.Probes[DropProbe], want)
		}
		if s.Start.Kernel != r.Uname {
			r.problem("%s: droptrace says kernel %q, uname -r %q", name, s.Start.Kernel, r.Uname)
		}
		if s.Start.SoftnetColumns != r.Columns {
			r.problem("%s: droptrace read %d softnet_stat columns, the file has %d", name, s.Start.SoftnetColumns, r.Columns)
		}
		for reason, code := range s.Codes {
			if k, ok := r.Reasons[reason]; ok && k != code {
				r.problem("%s: droptrace decoded code %d as %s, the kernel's kfree_skb format says %s is %d", name, code, reason, reason, k)
			}
		}
	}
}

func (r *Run) hasPassed(name string) bool {
	for _, bin := range Binaries {
		if passedIn(r.Tests[bin], name) {
			return true
		}
	}
	return false
}

// passedIn says whether the test called name passed among tests.
func passedIn(tests []Test, name string) bool {
	for _, t := range tests {
		if t.Name == name && t.Status == "PASS" {
			return true
		}
	}
	return false
}

func (r *Run) sessionNames() []string {
	names := make([]string, 0, len(r.Sessions))
	for n := range r.Sessions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
