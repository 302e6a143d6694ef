// SPDX-License-Identifier: Apache-2.0

package sample_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/interval"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/tracer"
)

const reasonNoSocket = 2

func reasonName(c uint32, _ uint64) string {
	if c == reasonNoSocket {
		return "NO_SOCKET"
	}
	return fmt.Sprintf("reason_%d", c)
}

// netnsAdd creates an `ip netns` namespace with lo up and returns its inode; t.Cleanup
// deletes it.
func netnsAdd(t *testing.T, name string) uint64 {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run() // left by a killed earlier run with our pid
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", name, err, out)
	}
	t.Cleanup(func() { netnsDel(t, name) })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up in %s: %v %s", name, err, out)
	}
	var st unix.Stat_t
	if err := unix.Stat(netns.RunDir+"/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// listNamed lists the namespaces whose names start with prefix: a test's own.
func listNamed(prefix string) func() ([]netns.NS, error) {
	return func() ([]netns.NS, error) {
		all, err := netns.List()
		var mine []netns.NS
		for _, n := range all {
			if strings.HasPrefix(n.Name, prefix) {
				mine = append(mine, n)
			}
		}
		return mine, err
	}
}

// netnsDel deletes a namespace the test made, once: a second call is a no-op.
func netnsDel(t *testing.T, name string) {
	t.Helper()
	if _, err := os.Stat(netns.RunDir + "/" + name); os.IsNotExist(err) {
		return
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v %s", name, err, out)
	}
}

// sendNoPort sends n datagrams to a closed port on loopback inside the namespace: each one
// bumps its Udp NoPorts, as a traced NO_SOCKET drop would be counted.
func sendNoPort(t *testing.T, name string, n int) {
	t.Helper()
	err := netns.Do(netns.RunDir+"/"+name, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer c.Close()
		for range n {
			if _, err := c.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// reuseInode creates namespaces named prefix-N until the kernel gives one the inode ino
// (freed when its namespace was deleted), bounded in count. Every namespace made is deleted by
// t.Cleanup; the others are kept until then so the kernel cannot hand their inodes out again
// and must reach ino. It fails when another process's new namespace took ino first.
func reuseInode(t *testing.T, prefix string, ino uint64) (string, bool) {
	t.Helper()
	for i := range 50 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if netnsAdd(t, name) == ino {
			return name, true
		}
		// A deleted namespace's inode is freed by the kernel's cleanup work, shortly after.
		time.Sleep(10 * time.Millisecond)
	}
	return "", false
}

// noPortCheck runs one interval of prev and cur through Diff, the record and its checks and
// verdicts, as a session does, and returns its udp_no_port check and the IDs of the verdicts
// about it.
func noPortCheck(t *testing.T, prev, cur *sample.Sample) (record.Check, []string) {
	t.Helper()
	d := interval.Diff(prev, cur, reasonName)
	names := assemble.Names{Reason: reasonName, Location: func(uint64) string { return "" }, Ifname: func(uint32, uint32) string { return "" }}
	rec := assemble.Record(d, assemble.Input{Type: "interval"}, names, false)
	ok := reconcile.Availability{OK: true}
	rec.Checks = assemble.Checks(rec, &d.Evidence, assemble.Availability{Drops: ok, NetRx: ok, Predict: ok})
	// Host-wide checks (softnet's backlog drops) see other traffic on the host: only the
	// verdicts about this check are this test's.
	var ids []string
	for _, v := range explain.Explain(&record.Start{}, rec) {
		if v.Evidence["check"] == "udp_no_port" {
			ids = append(ids, v.ID)
		}
	}
	for _, c := range rec.Checks {
		if c.Check == "udp_no_port" {
			return c, ids
		}
	}
	t.Fatal("no udp_no_port check")
	return record.Check{}, nil
}

func tracedNoPort(ino uint64, n uint64) map[tracer.DropKey][]uint64 {
	k := tracer.DropKey{Reason: reasonNoSocket, Netns: uint32(ino), L3: 0x0800, L4: 17}
	return map[tracer.DropKey][]uint64{k: {n}}
}

// A namespace deleted and replaced by a new one with the same inode between two samples: the
// first namespace's counters are never the baseline of the second's, so the drops traced in
// the second (attributed by BPF to the inode alone) make no false mismatch.
func TestPrivNamespaceInodeReuse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: creating network namespaces needs root; run as root to cover this")
	}
	prefix := fmt.Sprintf("dtreuse-%d", os.Getpid())
	var (
		r      *sample.Reader
		s1     *sample.Sample
		ino    uint64
		b      string
		reused bool
	)
	// Other tests and processes create namespaces too, and one may take the freed inode
	// first: then the round starts again with a new namespace.
	for round := 0; round < 5 && !reused; round++ {
		ours := fmt.Sprintf("%s-%d", prefix, round)
		a := ours + "a"
		ino = netnsAdd(t, a)
		// A's counter differs from B's, so a delta taken across them is not the traced count.
		sendNoPort(t, a, 5)
		r = sample.NewReader(sample.Config{
			FS: hostfs.Host(),
			// Only this round's namespaces: other traffic on the host moves the host's
			// counters, and an earlier round's are not this scenario.
			ListNetns: listNamed(ours),
		})
		var err error
		if s1, err = r.Read(); err != nil {
			t.Fatal(err)
		}
		s1.Drops = tracedNoPort(ino, 0)
		netnsDel(t, a)
		b, reused = reuseInode(t, ours+"b", ino)
		if reused {
			t.Logf("namespace %s got inode %d of %s", b, ino, a)
		}
	}
	if !reused {
		t.Fatal("no new namespace of this test got a deleted one's inode back in 5 rounds")
	}
	sendNoPort(t, b, 10)
	s2, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	s2.Drops = tracedNoPort(ino, 10)
	c, verdicts := noPortCheck(t, s1, s2)
	if c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "replaced (inode reused)") {
		t.Errorf("interval of the reuse: %+v, want unavailable: namespace replaced (inode reused)", c)
	}
	if slices.Contains(verdicts, explain.Unexplained) {
		t.Errorf("interval of the reuse: verdicts %v", verdicts)
	}

	// The next interval starts from B's own baseline.
	sendNoPort(t, b, 3)
	s3, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	s3.Drops = tracedNoPort(ino, 13)
	c, _ = noPortCheck(t, s2, s3)
	if c.Status != record.StatusMatch || c.Traced == nil || *c.Traced != 3 || c.Kernel == nil || *c.Kernel != 3 {
		t.Errorf("interval after the reuse: %+v, want match of 3", c)
	}
}
