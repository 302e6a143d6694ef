// SPDX-License-Identifier: Apache-2.0

package sample

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	r = NewReader(Config{FS: fixtureFS(t), ListNetns: func() ([]netns.NS, error) { return nil, errors.New("no /proc") }})
	if _, err := r.Read(); err == nil {
		t.Error("no namespace listed, yet no error")
	}
}
