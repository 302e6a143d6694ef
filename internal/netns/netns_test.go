// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseLink(t *testing.T) {
	if v, ok := parseLink("net:[4026531840]"); !ok || v != 4026531840 {
		t.Errorf("%d %v", v, ok)
	}
	for _, bad := range []string{"mnt:[1]", "net:[x]", "net:[1", ""} {
		if _, ok := parseLink(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

func TestListFindsSelf(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	self, _ := Self()
	for _, n := range list {
		if n.Inode == self {
			if n.Name != "host" {
				t.Errorf("own namespace named %q", n.Name)
			}
			b, err := n.ReadFile("snmp")
			if err != nil || !bytes.Contains(b, []byte("Udp:")) {
				t.Errorf("read own snmp: %v", err)
			}
			return
		}
	}
	t.Errorf("own namespace %d not in %v", self, list)
}

func udpNoPorts(t *testing.T, b []byte) int {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i], "Udp: ") && strings.HasPrefix(lines[i+1], "Udp: ") {
			h, v := strings.Fields(lines[i]), strings.Fields(lines[i+1])
			for j := range h {
				if h[j] == "NoPorts" {
					n, _ := strconv.Atoi(v[j])
					return n
				}
			}
		}
	}
	t.Fatal("no Udp NoPorts")
	return 0
}

func TestParsePid(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"1\x00", 1, true}, {"4194304\x00\x00\x00", 4194304, true}, {"12", 12, true},
		{".\x00", 0, false}, {"..\x00", 0, false}, {"self\x00", 0, false}, {"\x00", 0, false},
		{"1a\x00", 0, false}, {"99999999999999999999\x00", 0, false},
	} {
		pid, ok := parsePid([]byte(tc.name))
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("parsePid(%q) = %d, %v; want %d, %v", tc.name, pid, ok, tc.pid, tc.ok)
		}
	}
}

// A file in the `ip netns` directory that is not a namespace bind mount (what a failed
// `ip netns add` leaves) is not a namespace.
func TestListIgnoresPlainFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/leftover", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := RunDir
	RunDir = dir
	t.Cleanup(func() { RunDir = old })
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		if n.Name == "leftover" {
			t.Errorf("plain file listed as a namespace: %+v", n)
		}
	}
}

func TestReadFileRejectsPaths(t *testing.T) {
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	n := NS{Inode: self, Name: "host", self: true}
	for _, bad := range []string{"", ".", "..", "../self/environ", "dev_snmp6/lo"} {
		if _, err := n.ReadFile(bad); err == nil {
			t.Errorf("ReadFile(%q) accepted", bad)
		}
	}
	if _, err := n.ReadFile("no_such_file"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: creating network namespaces needs root; run as root to cover this")
	}
}

func find(t *testing.T, ino uint64) (NS, []NS) {
	t.Helper()
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list {
		if n.Inode == ino {
			return n, list
		}
	}
	return NS{}, list
}

func addNetns(t *testing.T, name string) NS {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run() // left by a killed earlier run with our pid
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v %s", name, err, out)
	}
	st, err := stat(RunDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	ns, list := find(t, st.Ino)
	if ns.Name != name || ns.path == "" || ns.pid != 0 {
		t.Fatalf("namespace %s (inode %d) not listed as a bind mount: %+v", name, st.Ino, list)
	}
	return ns
}

func readNoPorts(t *testing.T, ns NS) int {
	t.Helper()
	b, err := ns.ReadFile("snmp")
	if err != nil {
		t.Fatal(err)
	}
	return udpNoPorts(t, b)
}

// A namespace with no process in it is read by entering it; its counters are its own.
func TestPrivReadsAnotherNamespace(t *testing.T) {
	requireRoot(t)
	ns := addNetns(t, fmt.Sprintf("dtnstest-%d", os.Getpid()))
	control := addNetns(t, fmt.Sprintf("dtnstest-%d-control", os.Getpid()))
	self, _ := Self()
	host, _ := find(t, self)
	hostBefore := readNoPorts(t, host)

	// Datagrams to a closed port on loopback inside the namespace: only its NoPorts counts them.
	const sent = 50
	err := Do(ns.path, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer c.Close()
		for range sent {
			if _, err := c.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := readNoPorts(t, ns); got != sent {
		t.Errorf("NoPorts in %s = %d, want %d", ns.Name, got, sent)
	}
	// The host's counter cannot show "unchanged" while anything else on the machine sends to
	// closed ports, so the check that nothing leaked is a namespace nobody else uses.
	if got := readNoPorts(t, control); got != 0 {
		t.Errorf("NoPorts in the control namespace %s = %d, want 0", control.Name, got)
	}
	t.Logf("NoPorts: %s %d, %s 0; host %d -> %d (other traffic)", ns.Name, sent, control.Name, hostBefore, readNoPorts(t, host))
	if now, _ := Self(); now != self {
		t.Error("this thread was left in the test namespace")
	}
}

// startIsolated starts a process in a namespace of its own that nothing binds, like a container's.
func startIsolated(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	c := exec.Command("sh", "-c", script)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	return c
}

func netInode(t *testing.T, pid int) uint64 {
	t.Helper()
	st, err := stat(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// startUnshared starts a process in a new namespace nothing binds, and returns its inode once
// the process is in it.
func startUnshared(t *testing.T) (*exec.Cmd, uint64) {
	t.Helper()
	c := startIsolated(t, "exec unshare --net sleep 60")
	self, _ := Self()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ino := netInode(t, c.Process.Pid); ino != self {
			return c, ino
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare did not create a namespace")
		}
	}
}

// A namespace only a process holds is read through that process, and is gone with it.
func TestPrivReadsThroughProcess(t *testing.T) {
	requireRoot(t)
	c, ino := startUnshared(t)
	ns, list := find(t, ino)
	if ns.pid != c.Process.Pid || ns.path != "" {
		t.Fatalf("namespace %d of pid %d not listed through it: %+v", ino, c.Process.Pid, list)
	}
	if want := fmt.Sprintf("pid:%d (sleep)", c.Process.Pid); ns.Name != want {
		t.Errorf("name %q, want %q", ns.Name, want)
	}
	dev, err := ns.ReadFile("dev")
	if err != nil {
		t.Fatal(err)
	}
	// A fresh namespace has only lo: the host's interfaces must not show.
	if ifs := strings.Count(string(dev), ":"); ifs != 1 || !strings.Contains(string(dev), "lo:") {
		t.Errorf("read another namespace's /proc/net/dev:\n%s", dev)
	}
	c.Process.Kill()
	c.Wait()
	if _, err := ns.ReadFile("dev"); !errors.Is(err, ErrGone) {
		t.Errorf("after its only process exited: %v, want ErrGone", err)
	}
	if n, _ := find(t, ino); n.Inode != 0 {
		t.Errorf("exited namespace still listed: %+v", n)
	}
}

// A process already seen that moves to a new namespace later is found within recheckEvery.
func TestPrivSeesLateMove(t *testing.T) {
	requireRoot(t)
	old := recheckEvery
	recheckEvery = 2 * time.Second
	t.Cleanup(func() { recheckEvery = old })
	// sh is seen in the host namespace for its young sightings, then execs unshare, same pid.
	c := startIsolated(t, "sleep 1.5; exec unshare --net sleep 60")
	self, _ := Self()
	pid := c.Process.Pid
	start := time.Now()
	for ; time.Since(start) < time.Second; time.Sleep(100 * time.Millisecond) {
		if _, err := List(); err != nil {
			t.Fatal(err)
		}
	}
	for {
		ino := netInode(t, pid)
		if ino != self {
			if n, _ := find(t, ino); n.pid == pid {
				t.Logf("listed in its new namespace %s after start; it moved at 1.5 s, recheck period %s", time.Since(start).Round(time.Millisecond), recheckEvery)
				return
			}
		}
		if time.Since(start) > 1500*time.Millisecond+recheckEvery+time.Second {
			t.Fatalf("pid %d moved to netns %d and was not listed there within %s", pid, ino, recheckEvery)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func BenchmarkList(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := List(); err != nil {
			b.Fatal(err)
		}
	}
}

// manyProcesses starts thousands of processes, some in namespaces of their own that nothing
// binds (like containers), as on a busy container host; they are killed when b ends.
func manyProcesses(b *testing.B) {
	const plain, isolated = 3000, 200
	var procs []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range procs {
			c.Process.Kill()
			c.Wait()
		}
	})
	start := func(name string, args ...string) {
		c := exec.Command(name, args...)
		if err := c.Start(); err != nil {
			b.Fatalf("start %s: %v", name, err)
		}
		procs = append(procs, c)
	}
	for range plain {
		start("sleep", "600")
	}
	if os.Geteuid() == 0 {
		for range isolated {
			start("unshare", "--net", "sleep", "600")
		}
	}
	// unshare execs sleep only after creating the namespace: let them all get there.
	time.Sleep(2 * time.Second)
	list, err := List()
	if err != nil {
		b.Fatal(err)
	}
	entries, _ := os.ReadDir("/proc")
	b.Logf("%d /proc entries, %d namespaces", len(entries), len(list))
}

// BenchmarkListEverySecond is List as droptrace calls it: once a second (the clock is faked
// so the benchmark need not wait), with the process table cached between calls.
func BenchmarkListEverySecond(b *testing.B) {
	manyProcesses(b)
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Second)
		if _, err := list(now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListUncached reads every process's namespace on every call: what List would cost
// without its cache.
func BenchmarkListUncached(b *testing.B) {
	manyProcesses(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cache.Lock()
		cache.procs = nil
		cache.Unlock()
		if _, err := List(); err != nil {
			b.Fatal(err)
		}
	}
}
