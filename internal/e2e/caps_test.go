// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/record"
)

// unitFile is the systemd unit whose CapabilityBoundingSet the DaemonSet repeats
// (deploy/deploy_test.go checks they are the same set).
const unitFile = "../../deploy/systemd/droptrace.service"

// capNumbers are the capabilities the unit may name, as setpriv spells them.
var capNumbers = map[string]int{
	"bpf": unix.CAP_BPF, "perfmon": unix.CAP_PERFMON, "sys_resource": unix.CAP_SYS_RESOURCE,
	"syslog": unix.CAP_SYSLOG, "sys_ptrace": unix.CAP_SYS_PTRACE,
}

// unitCapabilities reads the unit's CapabilityBoundingSet (setpriv's names) and its comments,
// joined into one line so a sentence wrapped over lines reads as one.
func unitCapabilities(t *testing.T) (caps []string, comments string) {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	for _, line := range strings.Split(string(b), "\n") {
		if c, ok := strings.CutPrefix(line, "#"); ok {
			words = append(words, strings.Fields(c)...)
		}
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			for _, c := range strings.Fields(v) {
				name := strings.ToLower(strings.TrimPrefix(c, "CAP_"))
				if _, known := capNumbers[name]; !known {
					t.Fatalf("the unit grants %s, which this test does not know", c)
				}
				caps = append(caps, name)
			}
		}
	}
	if len(caps) == 0 {
		t.Fatal("the unit has no CapabilityBoundingSet")
	}
	return caps, strings.Join(words, " ")
}

// capMask is the bit mask /proc/<pid>/status shows for caps.
func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << capNumbers[c]
	}
	return m
}

// procCaps reads a capability set ("CapEff", "CapBnd", ...) of pid.
func procCaps(t *testing.T, pid int, set string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, set+":"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no %s in /proc/%d/status", set, pid)
	return 0
}

// kernelAtLeast says whether the running kernel is at least major.minor.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma > major || ma == major && mi >= minor
}

// otherNetns starts a process (root, all of root's capabilities, so not droptrace's to read
// without CAP_SYS_PTRACE) in a network namespace of its own with lo up, and returns the path
// of that namespace and its inode.
func otherNetns(t *testing.T) (string, uint32) {
	t.Helper()
	holder := exec.Command("unshare", "--net", "--", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	path := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err == nil && uint32(st.Ino) != selfNetns(t) {
			if out, err := exec.Command("nsenter", "--net="+path, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
				t.Fatalf("lo up in the holder's namespace: %v\n%s", err, out)
			}
			return path, uint32(st.Ino)
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare --net: the holder never entered a namespace of its own")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bindOnlyNetns makes an `ip netns` namespace no process is in, lo up, removed when the test
// ends; it returns its path and inode.
func bindOnlyNetns(t *testing.T) (string, uint32) {
	t.Helper()
	name := fmt.Sprintf("dtcaps-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run() // a stale one from a killed run
	for _, args := range [][]string{{"netns", "add", name}, {"-n", name, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return "/run/netns/" + name, netnsInode(t, name)
}

// capRun is what one session with a capability set showed.
type capRun struct {
	rec        recording
	stderr     string
	port       uint16 // of the overflowing socket this test process holds
	kernel     uint64 // that socket's own drop counter
	scrapedRcv float64
}

// runWithCaps runs a daemon session as uid 0 with exactly caps (bounding, permitted,
// effective and inheritable sets; no ambient; no new privileges, like the unit), checks the
// process really has exactly them, and sends it the workload: a UDP socket of this process
// overflowing, and datagrams to a closed port in each of nsPaths.
func runWithCaps(t *testing.T, caps []string, nsPaths []string, closedPort int) capRun {
	t.Helper()
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	port := smallUDPSocket(t)
	d := startWrapped(t, []string{"setpriv", "--inh-caps=" + set, "--bounding-set=" + set, "--no-new-privs", "--"},
		"--daemon", "--interval", "500ms", "--metrics-addr", "127.0.0.1:0")
	want := capMask(caps)
	for _, s := range []string{"CapBnd", "CapPrm", "CapEff", "CapInh"} {
		if got := procCaps(t, d.cmd.Process.Pid, s); got != want {
			t.Fatalf("droptrace's %s is %#x, want exactly %#x (%s)", s, got, want, strings.Join(caps, " "))
		}
	}
	if got := procCaps(t, d.cmd.Process.Pid, "CapAmb"); got != 0 {
		t.Fatalf("droptrace has ambient capabilities %#x", got)
	}

	sendUDP(t, port, 3000)
	for _, p := range nsPaths {
		sendUDPTo(t, p, "127.0.0.1", closedPort, 200)
	}
	// Two more intervals end after the traffic: the endpoint serves a whole interval with it.
	intervals := func() float64 {
		return scrapeFamilies(t, d.addr, "droptrace_intervals_total")["droptrace_intervals_total{}"]
	}
	after := intervals()
	deadline := time.Now().Add(60 * time.Second)
	for intervals() < after+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the endpoint at %s ended no interval in 60s; stderr:\n%s", d.addr, d.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	run := capRun{port: port, kernel: socketDrops(t, port)}
	for k, v := range scrapeFamilies(t, d.addr, "droptrace_drops_total") {
		if strings.Contains(k, "reason=SOCKET_RCVBUFF") {
			run.scrapedRcv += v
		}
	}
	run.rec = d.stop(t)
	run.stderr = d.stderr.String()
	return run
}

// portEntry is the summary's entry for reason on port in netns, or nil.
func portEntry(sum *record.Interval, reason string, port uint16, netns uint32) *record.PortDrops {
	for i, p := range sum.Ports {
		if p.Reason == reason && p.Port == port && p.Netns == netns {
			return &sum.Ports[i]
		}
	}
	return nil
}

// notesAbout are the check notes that name netns.
func notesAbout(sum *record.Interval, netns uint32) []string {
	var out []string
	for _, c := range sum.Checks {
		if strings.Contains(c.Note, fmt.Sprintf("netns %d (", netns)) || strings.Contains(c.Note, fmt.Sprintf("netns %d [", netns)) {
			out = append(out, c.Check+": "+c.Note)
		}
	}
	return out
}

// rcvbufLocations are the drop locations of SOCKET_RCVBUFF drops.
func rcvbufLocations(sum *record.Interval) []string {
	var out []string
	for _, l := range sum.Locations {
		if l.Reason == "SOCKET_RCVBUFF" {
			out = append(out, l.Location)
		}
	}
	return out
}

// The unit's (and the DaemonSet's) capabilities, tested as a set: droptrace as uid 0 with
// exactly them traces in full mode, reconciles, serves /metrics, reads another process's
// namespace and names the holder of an overflowing socket in another process. With each one
// removed it degrades as the unit's comments say, and those sentences are asserted to be there.
func TestPrivCapabilitySet(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"setpriv", "unshare", "nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (util-linux, iproute2): %v", tool, err)
		}
	}
	caps, comments := unitCapabilities(t)
	hostBnd := procCaps(t, os.Getpid(), "CapBnd")
	var granted []string
	for _, c := range caps {
		if hostBnd&(1<<capNumbers[c]) != 0 {
			granted = append(granted, c)
			continue
		}
		if c != "sys_resource" {
			t.Fatalf("this host's root has no CAP_%s in its bounding set: the set cannot be tested", strings.ToUpper(c))
		}
		if !kernelAtLeast(t, 5, 11) {
			t.Fatal("this host's root has no CAP_SYS_RESOURCE and its kernel is older than 5.11, where BPF maps need it")
		}
		t.Log("NOTE: this host's root has no CAP_SYS_RESOURCE in its bounding set: the rest of the set is granted; " +
			"CAP_SYS_RESOURCE matters only before 5.11 (RLIMIT_MEMLOCK), this kernel charges maps to the memory cgroup")
	}
	without := func(c string) []string {
		var out []string
		for _, g := range granted {
			if g != c {
				out = append(out, g)
			}
		}
		return out
	}
	says := func(sentence string) {
		t.Helper()
		if !strings.Contains(comments, sentence) {
			t.Errorf("the unit's comments no longer say %q, which this test asserts", sentence)
		}
	}
	nsPath, nsIno := otherNetns(t)
	bindPath, bindIno := bindOnlyNetns(t)
	const closedPort = 7
	workload := []string{nsPath, bindPath}

	t.Run("exactly the set", func(t *testing.T) {
		r := runWithCaps(t, granted, workload, closedPort)
		sum := r.rec.summary
		if r.rec.start.Mode != record.ModeFull {
			t.Fatalf("mode %q, want full; stderr:\n%s", r.rec.start.Mode, r.stderr)
		}
		if c := check(t, sum, "udp_rcvbuf", -1); c.Status == record.StatusUnavailable || val(c.Traced) < int64(r.kernel) {
			t.Errorf("udp_rcvbuf check %+v: want it reconciled, with at least the %d drops of our socket traced", c, r.kernel)
		}
		if r.kernel == 0 || r.scrapedRcv < float64(r.kernel) {
			t.Errorf("/metrics counts %v SOCKET_RCVBUFF drops; our socket alone dropped %d", r.scrapedRcv, r.kernel)
		}
		p := portEntry(sum, "SOCKET_RCVBUFF", r.port, selfNetns(t))
		if p == nil || p.Drops != r.kernel || p.PID != os.Getpid() || p.RcvBuf == 0 {
			t.Errorf("port %d entry %+v: want %d drops, held by pid %d, with its receive buffer", r.port, p, r.kernel, os.Getpid())
		}
		if p := portEntry(sum, "NO_SOCKET", closedPort, nsIno); p == nil || p.Drops != 200 {
			t.Errorf("NO_SOCKET to port %d in netns %d: entry %+v, want 200 drops", closedPort, nsIno, p)
		}
		if n := notesAbout(sum, nsIno); len(n) != 0 {
			t.Errorf("the other process's namespace was not read: %q", n)
		}
		// Deliberately not granted: CAP_SYS_ADMIN, to enter a namespace no process is in.
		says(`Without it the checks name such namespaces as unreadable ("needs CAP_SYS_ADMIN").`)
		if p := portEntry(sum, "NO_SOCKET", closedPort, bindIno); p == nil || p.Drops != 200 {
			t.Errorf("NO_SOCKET to port %d in netns %d: entry %+v, want its 200 drops traced", closedPort, bindIno, p)
		}
		n := notesAbout(sum, bindIno)
		for _, note := range n {
			if !strings.Contains(note, fmt.Sprintf("via %s: enter netns %s (needs CAP_SYS_ADMIN)", bindPath, bindPath)) {
				t.Errorf("note %q does not say the namespace no process is in needs CAP_SYS_ADMIN", note)
			}
		}
		if len(n) == 0 {
			t.Errorf("no check note names netns %d, which no process is in", bindIno)
		}
		locs := rcvbufLocations(sum)
		for _, l := range locs {
			if strings.HasPrefix(l, "0x") || !strings.Contains(l, "+0x") {
				t.Errorf("location %q is not function+offset", l)
			}
		}
		if len(locs) == 0 {
			t.Error("no SOCKET_RCVBUFF location")
		}
	})

	for _, c := range []string{"bpf", "perfmon"} {
		t.Run("without "+c, func(t *testing.T) {
			says("Without these two: counters-only mode.")
			r := runWithCaps(t, without(c), workload, closedPort)
			if r.rec.start.Mode != record.ModeCountersOnly || !strings.Contains(r.stderr, "running counters-only") {
				t.Errorf("mode %q, want counters-only and a warning saying so; stderr:\n%s", r.rec.start.Mode, r.stderr)
			}
			if c := check(t, r.rec.summary, "udp_rcvbuf", -1); c.Status != record.StatusUnavailable {
				t.Errorf("udp_rcvbuf check %+v without tracing", c)
			}
		})
	}

	t.Run("without syslog", func(t *testing.T) {
		says("Without it locations are bare addresses.")
		r := runWithCaps(t, without("syslog"), workload, closedPort)
		if r.rec.start.Mode != record.ModeFull {
			t.Fatalf("mode %q, want full; stderr:\n%s", r.rec.start.Mode, r.stderr)
		}
		locs := rcvbufLocations(r.rec.summary)
		for _, l := range locs {
			if !strings.HasPrefix(l, "0x") {
				t.Errorf("location %q without CAP_SYSLOG: want a bare address", l)
			}
		}
		if len(locs) == 0 {
			t.Error("no SOCKET_RCVBUFF location")
		}
	})

	t.Run("without sys_ptrace", func(t *testing.T) {
		const notFound = "namespace not found (it vanished, or its processes are hidden)"
		says(`Without it their drops are traced but their checks say "` + notFound + `".`)
		says("without it sockets held by such processes are listed without holder or buffer.")
		r := runWithCaps(t, without("sys_ptrace"), workload, closedPort)
		sum := r.rec.summary
		if r.rec.start.Mode != record.ModeFull {
			t.Fatalf("mode %q, want full; stderr:\n%s", r.rec.start.Mode, r.stderr)
		}
		if p := portEntry(sum, "NO_SOCKET", closedPort, nsIno); p == nil || p.Drops != 200 {
			t.Errorf("NO_SOCKET to port %d in netns %d: entry %+v, want its 200 drops traced", closedPort, nsIno, p)
		}
		want := fmt.Sprintf("netns %d (%s)", nsIno, notFound)
		if c := check(t, sum, "udp_no_port", -1); !strings.Contains(c.Note, want) {
			t.Errorf("udp_no_port note %q does not say %q", c.Note, want)
		}
		p := portEntry(sum, "SOCKET_RCVBUFF", r.port, selfNetns(t))
		if p == nil || p.Drops != r.kernel || p.PID != 0 || p.RcvBuf != 0 {
			t.Errorf("port %d entry %+v: want its %d drops, no holder and no receive buffer", r.port, p, r.kernel)
		}
	})

	t.Run("without sys_resource", func(t *testing.T) {
		says("raise RLIMIT_MEMLOCK for BPF maps on kernels before 5.11")
		if !kernelAtLeast(t, 5, 11) {
			// What it then loses depends on the RLIMIT_MEMLOCK the service starts with.
			t.Log("NOTE: kernel before 5.11, where maps are charged to RLIMIT_MEMLOCK: removing CAP_SYS_RESOURCE is not asserted")
			return
		}
		if len(granted) < len(caps) {
			t.Log("NOTE: the host has no CAP_SYS_RESOURCE to remove: \"exactly the set\" above ran without it, in full mode")
			return
		}
		r := runWithCaps(t, without("sys_resource"), workload, closedPort)
		if r.rec.start.Mode != record.ModeFull {
			t.Errorf("mode %q without CAP_SYS_RESOURCE on a kernel >= 5.11, want full; stderr:\n%s", r.rec.start.Mode, r.stderr)
		}
	})
}
