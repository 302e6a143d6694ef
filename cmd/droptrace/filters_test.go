// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/filter"
)

// A filter value that cannot be resolved exits 2 before any file is touched, with a line
// naming the flag and what was expected.
func TestBadFilterFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--reason", "NO_SOCKETZ"}, []string{`droptrace: --reason "NO_SOCKETZ": `}},
		{[]string{"--proto", "quic"}, []string{`droptrace: --proto "quic": want tcp, udp, icmp, icmpv6, sctp, udplite, or an IP protocol number from 0 to 255`}},
		{[]string{"--port", "65536"}, []string{`droptrace: --port "65536": want a TCP, UDP or UDP-Lite port from 1 to 65535`}},
		{[]string{"--port", "0,53"}, []string{`droptrace: --port "0": want`}},
		{[]string{"--iface", "nosuchdev0"}, []string{`droptrace: --iface "nosuchdev0": want a device name or ifindex in network namespace`}},
		{[]string{"--netns", "/nonexistent/netns"}, []string{`droptrace: --netns "/nonexistent/netns": `, "want a netns inode"}},
		{[]string{"--netns", "1"}, []string{`droptrace: --netns "1": `, "lsns -t net"}},
		{[]string{"--netns", "default/no-such-pod", "--runtime-state-dir", "containerd=/nonexistent"},
			[]string{`droptrace: --netns "default/no-such-pod": no pod default/no-such-pod with a network namespace of its own`}},
		// Every bad value and bound at once, one line each.
		{[]string{"--port", "x", "--proto", "y", "--interval", "1ns"}, []string{"--interval 1ns", `--port "x"`, `--proto "y"`}},
	} {
		path := filepath.Join(t.TempDir(), "existing.jsonl")
		content := []byte(`{"type":"start"}` + "\n")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"--output", path}, tc.args...)
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		rest := errb.String()
		for _, w := range tc.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("droptrace %v: stderr %q lacks %q (in order)", args, errb.String(), w)
				break
			}
			rest = rest[i+len(w):]
		}
		if code != 2 {
			t.Errorf("droptrace %v: exit %d, want 2", args, code)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, content) {
			t.Errorf("droptrace %v: the output file was touched: %q %v", args, got, err)
		}
	}
}

// A filter turns events on; without a place for drop records it is a usage error that says
// why.
func TestFiltersImplyEvents(t *testing.T) {
	var f flags
	fs := newFlagSet(&f, io.Discard)
	if err := fs.Parse([]string{"--proto", "udp", "--port", "53,5353", "--output", "x.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if err := f.resolveFilters(filter.Env{}); err != nil {
		t.Fatal(err)
	}
	if !f.events || f.filters.resolved.Record == nil || len(f.filters.resolved.BPF.Ports) != 2 {
		t.Errorf("--proto udp --port 53,5353: events %v, filter %+v; want events on and both ports", f.events, f.filters.resolved)
	}

	// In a terminal with no --output, drop records have nowhere to go.
	f = flags{}
	fs = newFlagSet(&f, io.Discard)
	if err := fs.Parse([]string{"--port", "53"}); err != nil {
		t.Fatal(err)
	}
	if err := f.resolveFilters(filter.Env{}); err != nil {
		t.Fatal(err)
	}
	err := checkOutputs(&f, true)
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "event filters (--reason, --netns, --iface, --port, --proto) select drop records: give --output FILE") {
		t.Errorf("--port 53 in a terminal: %v; want a usage error asking for --output", err)
	}
}
