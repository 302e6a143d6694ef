// SPDX-License-Identifier: Apache-2.0

package sample

import (
	"slices"
	"testing"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/reconcile"
)

// Only SNMPGroups are parsed: every counter a check compares must be in them.
func TestSNMPGroupsHoldCheckedCounters(t *testing.T) {
	for _, sc := range reconcile.SNMPChecks {
		for _, c := range sc.Counters {
			if !slices.Contains(SNMPGroups, c.Group) {
				t.Errorf("check %s compares %s %s, a group samples do not read", sc.Name, c.Group, c.Field)
			}
		}
	}
}

// A namespace's sample holds the kept groups of all three files and nothing else.
func TestReadSNMPKeepsGroups(t *testing.T) {
	list, err := netns.List()
	if err != nil {
		t.Fatal(err)
	}
	self, _ := netns.Self()
	for _, ns := range list {
		if ns.Inode != self {
			continue
		}
		c, err := readSNMP(ns, make([][]byte, len(snmpFiles)))
		if err != nil {
			t.Fatal(err)
		}
		for g := range c {
			if !slices.Contains(SNMPGroups, g) {
				t.Errorf("group %s read", g)
			}
		}
		for _, g := range []string{"Udp", "TcpExt"} {
			if len(c[g]) == 0 {
				t.Errorf("group %s missing: %v", g, c)
			}
		}
		if _, ok := c.Get("TcpExt", "ListenOverflows"); !ok {
			t.Error("TcpExt ListenOverflows missing")
		}
		return
	}
	t.Fatalf("own namespace %d not listed", self)
}
