// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listed runs identify as one List would, on namespaces that cannot be entered (no path, no
// pid), so no cookie is known and carriers alone decide.
func listed(nss []*NS, c carriers) {
	cache.Lock()
	defer cache.Unlock()
	cache.gen++
	byIno := map[uint64]*NS{}
	for _, n := range nss {
		byIno[n.Inode] = n
	}
	identify(byIno, &c)
}

func TestIdentify(t *testing.T) {
	const ino = 1 << 40 // no real namespace's
	t1, t2 := unix.Timespec{Sec: 100}, unix.Timespec{Sec: 200}
	mounted := func(path string, ctime unix.Timespec) carriers {
		var c carriers
		c.mount(ino, path, ctime)
		return c
	}
	stayed := func(c carriers) carriers {
		c.stayed(ino)
		return c
	}
	n := &NS{Inode: ino}
	listed([]*NS{n}, mounted("/run/netns/a", t1))
	first := n.Gen
	if first == 0 {
		t.Fatal("no generation on first sight")
	}
	for _, step := range []struct {
		name string
		c    carriers
		same bool
	}{
		{"the same bind mount", mounted("/run/netns/a", t1), true},
		{"the same path bound to a new nsfs inode: deleted and added again", mounted("/run/netns/a", t2), false},
		{"then unchanged", mounted("/run/netns/a", t2), true},
		{"another name and no process that stayed: replaced", mounted("/run/netns/b", t2), false},
		{"a process that was in it stays, though the mount changed", stayed(mounted("/run/netns/c", t1)), true},
		{"nothing that held it before", carriers{}, false},
	} {
		before := n.Gen
		listed([]*NS{n}, step.c)
		if got := n.Gen == before; got != step.same {
			t.Errorf("%s: generation %d -> %d, want same=%v", step.name, before, n.Gen, step.same)
		}
	}
	// Not listed once: forgotten, a new generation when back, though its carriers stayed.
	before := n.Gen
	listed(nil, carriers{})
	listed([]*NS{n}, stayed(carriers{}))
	if n.Gen == before {
		t.Errorf("namespace back after a listing without it kept generation %d", before)
	}
	// Droptrace's own namespace cannot be replaced while it runs.
	self := &NS{Inode: ino + 1, self: true}
	listed([]*NS{self}, carriers{})
	before = self.Gen
	listed([]*NS{self}, carriers{})
	if self.Gen != before {
		t.Errorf("own namespace changed generation %d -> %d", before, self.Gen)
	}
}

func nsGen(t *testing.T, ino uint64) NS {
	t.Helper()
	n, list := find(t, ino)
	if n.Inode == 0 {
		t.Fatalf("namespace %d not listed: %+v", ino, list)
	}
	return n
}

// Real reuse: a namespace deleted and a new one given its inode get different generations,
// and the cookie keeps a namespace's generation when all its carriers change at once.
func TestPrivGenerationOnReuse(t *testing.T) {
	requireRoot(t)
	inRounds(t, "dtgen", generationOnReuse)
}

// inRounds runs a reuse scenario until the kernel gave the inode back in one of 5 rounds,
// each with its own names: other tests and processes create namespaces too, and one of theirs
// may take the freed inode first.
func inRounds(t *testing.T, prefix string, round func(t *testing.T, prefix string) bool) {
	t.Helper()
	for i := range 5 {
		if round(t, fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), i)) {
			return
		}
	}
	t.Fatal("no namespace of this test got a deleted one's inode back in 5 rounds")
}

func generationOnReuse(t *testing.T, prefix string) bool {
	a := nsGen(t, ipNetnsAdd(t, prefix+"-a"))
	if a.Cookie == 0 {
		t.Errorf("no cookie for %s on %s", a.Name, kernelRelease())
	}
	// Bound elsewhere and unbound here: no carrier of the last List remains.
	moved := bindAs(t, a.Name, prefix+"-moved")
	if out, err := exec.Command("ip", "netns", "del", a.Name).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if n := nsGen(t, a.Inode); n.Gen != a.Gen || n.Cookie != a.Cookie {
		t.Errorf("rebound namespace: generation %d -> %d, cookie %d -> %d", a.Gen, n.Gen, a.Cookie, n.Cookie)
	}
	// Now it dies; the kernel gives its inode to a later namespace.
	if err := unix.Unmount(moved, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		name := fmt.Sprintf("%s-b%d", prefix, i)
		if ipNetnsAdd(t, name) == a.Inode {
			b := nsGen(t, a.Inode)
			if b.Name != name || b.Gen == a.Gen || b.Cookie == a.Cookie {
				t.Errorf("namespace %s on %s's inode %d: generation %d (was %d), cookie %d (was %d)",
					b.Name, a.Name, a.Inode, b.Gen, a.Gen, b.Cookie, a.Cookie)
			}
			return true
		}
		// A deleted namespace's inode is freed by the kernel's cleanup work, shortly after.
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// bindAs binds `ip netns` namespace name under another name too, as `ip netns attach` would;
// t.Cleanup unbinds it. It returns the new path.
func bindAs(t *testing.T, name, as string) string {
	t.Helper()
	p := RunDir + "/" + as
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH); os.Remove(p) })
	if err := unix.Mount(RunDir+"/"+name, p, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	return p
}

// A namespace deleted and added again under the same name, and given the same inode, is
// another namespace: List gives it a new generation, and reads through the earlier listing
// fail rather than return the new namespace's counters.
func TestPrivSameNameReuse(t *testing.T) {
	requireRoot(t)
	inRounds(t, "dtsame", sameNameReuse)
}

func sameNameReuse(t *testing.T, name string) bool {
	a := nsGen(t, ipNetnsAdd(t, name))
	del := func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
	}
	del()
	for i := range 50 {
		// A deleted namespace's inode is freed by the kernel's cleanup work, shortly after.
		time.Sleep(10 * time.Millisecond)
		if ipNetnsAdd(t, name) == a.Inode {
			if _, err := a.ReadFile("snmp"); !errors.Is(err, ErrGone) {
				t.Errorf("read through the listing of the deleted namespace: %v, want ErrGone", err)
			}
			if b := nsGen(t, a.Inode); b.Gen == a.Gen {
				t.Errorf("%s added again on inode %d kept generation %d", name, a.Inode, a.Gen)
			}
			return true
		}
		// Kept alive under another name until the end, so the kernel cannot give its inode
		// out again and must reach a's.
		bindAs(t, name, fmt.Sprintf("%s-keep%d", name, i))
		del()
	}
	return false
}

// ipNetnsAdd adds a namespace the test may delete itself; t.Cleanup deletes it if not.
func ipNetnsAdd(t *testing.T, name string) uint64 {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run() // left by a killed earlier run with our pid
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", name, err, out)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(RunDir + "/" + name); err == nil {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", name, err, out)
			}
		}
	})
	st, err := stat(RunDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
