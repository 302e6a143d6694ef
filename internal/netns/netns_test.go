// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
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

// A namespace with no process in it is read by entering it; its counters are its own.
func TestPrivReadsAnotherNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: creating a network namespace needs root")
	}
	name := fmt.Sprintf("dtnstest-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	want, err := inodeOf(RunDir + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	var ns NS
	for _, n := range list {
		if n.Inode == want {
			ns = n
		}
	}
	if ns.Name != name {
		t.Fatalf("namespace %s (inode %d) not listed: %+v", name, want, list)
	}
	host := list[0]
	for _, n := range list {
		if n.self {
			host = n
		}
	}
	hb, _ := host.ReadFile("snmp")
	hostBefore := udpNoPorts(t, hb)

	// Three datagrams to a closed port on loopback inside the namespace.
	err = Do(ns.path, func() error {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < 3; i++ {
			if _, err := c.WriteToUDP([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := ns.ReadFile("snmp")
	if err != nil {
		t.Fatal(err)
	}
	if got := udpNoPorts(t, b); got != 3 {
		t.Errorf("NoPorts in the new namespace = %d, want 3", got)
	}
	// The host's counter is not checked for "unchanged": other traffic may move it. It must
	// not have taken these three, which were counted in the other namespace.
	hb, _ = host.ReadFile("snmp")
	t.Logf("host NoPorts %d -> %d", hostBefore, udpNoPorts(t, hb))
	if self, _ := Self(); self == want {
		t.Error("this thread was left in the test namespace")
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
