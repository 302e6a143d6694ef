// SPDX-License-Identifier: Apache-2.0

package sample

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
)

// fixtureFS is a /proc built from other packages' parser fixtures.
func fixtureFS(t *testing.T, skip ...string) hostfs.FS {
	t.Helper()
	root := t.TempDir()
	for dst, src := range map[string]string{
		"proc/net/softnet_stat": "../softnet/testdata/6.18-2cpu.txt",
		"proc/softirqs":         "../softirqs/testdata/6.18-2cpu.txt",
		"proc/interrupts":       "../hostctx/testdata/interrupts-ixgbe.txt",
		"proc/net/sockstat":     "../hostctx/testdata/sockstat.txt",
		"proc/net/dev_mcast":    "../hostctx/testdata/dev_mcast.txt",
	} {
		if slices.Contains(skip, dst) {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return hostfs.New(root)
}

func noNetns() ([]netns.NS, error) { return []netns.NS{}, nil }

func TestReadFixtures(t *testing.T) {
	r := NewReader(Config{FS: fixtureFS(t), ListNetns: noNetns, NetnsEvery: time.Hour, NetIRQs: map[int]bool{47: true}})
	quiesced := 0
	r.QuiesceNext(func() { quiesced++ })
	sm, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if sm.SoftnetErr != nil || len(sm.Softnet.CPUs) != 2 || sm.SoftirqsErr != nil || sm.Softirqs["NET_RX"] == nil {
		t.Errorf("softnet %+v (%v), softirqs %v (%v)", sm.Softnet, sm.SoftnetErr, sm.Softirqs, sm.SoftirqsErr)
	}
	if len(sm.IRQs) != 1 || sm.IRQs[47] == nil {
		t.Errorf("only the network IRQs found at start are followed: %v", sm.IRQs)
	}
	if !sm.McastOK || len(sm.Mcast) == 0 || len(sm.Sockstat) == 0 {
		t.Errorf("mcast %v (%v), sockstat %v", sm.Mcast, sm.McastOK, sm.Sockstat)
	}
	if sm.Drops != nil || len(sm.Moved) == 0 {
		t.Errorf("counters-only: drops %v; moved %v", sm.Drops, sm.Moved)
	}
	for k, v := range sm.Moved {
		if v != 0 {
			t.Errorf("%v moved %d between two reads of unchanging files", k, v)
		}
	}
	if _, err := r.Read(); err != nil || quiesced != 1 {
		t.Errorf("quiesce ran %d times (want once, in the read it was set for); %v", quiesced, err)
	}
}

func TestReadMissingSources(t *testing.T) {
	r := NewReader(Config{FS: fixtureFS(t, "proc/net/softnet_stat", "proc/net/dev_mcast"), ListNetns: noNetns})
	sm, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sm.SoftnetErr, os.ErrNotExist) || sm.McastOK {
		t.Errorf("softnet err %v, mcast ok %v", sm.SoftnetErr, sm.McastOK)
	}
}

// A failed listing of the namespaces (descriptors exhausted, say) is one sample's loss: the
// namespaces listed before are kept, the sample says why, and the next read lists again.
func TestReadKeepsNamespacesWhenListingFails(t *testing.T) {
	host := netns.NS{Inode: 7, Name: "host"}
	calls := 0
	list := func() ([]netns.NS, error) {
		calls++
		if calls == 2 {
			return nil, syscall.EMFILE
		}
		return []netns.NS{host}, nil
	}
	r := NewReader(Config{FS: fixtureFS(t), ListNetns: list})
	for i := 1; i <= 3; i++ {
		sm, err := r.Read()
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if i == 2 {
			if !errors.Is(sm.NetnsErr, syscall.EMFILE) || sm.Netns[7] == nil {
				t.Errorf("read %d, listing failed: err %v, namespaces %v", i, sm.NetnsErr, sm.Netns)
			}
		} else if sm.NetnsErr != nil || sm.Netns[7] == nil {
			t.Errorf("read %d: err %v, namespaces %v", i, sm.NetnsErr, sm.Netns)
		}
	}

	// No list yet: the sample has no namespaces and says why, and the next read lists again
	// however seldom listing is due.
	calls = 0
	list = func() ([]netns.NS, error) {
		calls++
		if calls == 1 {
			return nil, errors.New("no /proc")
		}
		return []netns.NS{host}, nil
	}
	r = NewReader(Config{FS: fixtureFS(t), ListNetns: list, NetnsEvery: time.Hour})
	sm, err := r.Read()
	if err != nil || sm.NetnsErr == nil || len(sm.Netns) != 0 {
		t.Errorf("first listing failed: err %v, netns err %v, namespaces %v", err, sm.NetnsErr, sm.Netns)
	}
	sm, err = r.Read()
	if err != nil || sm.NetnsErr != nil || sm.Netns[7] == nil {
		t.Errorf("next read: err %v, netns err %v, namespaces %v", err, sm.NetnsErr, sm.Netns)
	}
}
