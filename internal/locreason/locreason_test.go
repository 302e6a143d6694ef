// SPDX-License-Identifier: Apache-2.0

package locreason

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/locreason/locreasontest"
)

// kernel510 is the 5.10 guest's kallsyms excerpt.
func kernel510(t *testing.T) *kallsyms.Symbols { return kernelSyms(t, "5.10") }

// kernelSyms is testdata/<kernel>/kallsyms.
func kernelSyms(t *testing.T, kernel string) *kallsyms.Symbols {
	return locreasontest.Symbols(t, filepath.Join("testdata", kernel, "kallsyms"))
}

// addr turns "function+0xoff" into an address of syms.
func addr(t *testing.T, syms *kallsyms.Symbols, loc string) uint64 {
	return locreasontest.Addr(t, syms, loc)
}

// The locations of each kernel's fixture (testdata/<kernel>/locations says where they come
// from: 5.10's were recorded in its guest, 5.15's derived from its source) are named as the
// kernel names them from 5.17 on, the calibrated call sites by what calibration learned, and
// others by their function.
func TestNamesTheLocationsOf(t *testing.T) {
	for _, kernel := range []string{"5.10", "5.15"} {
		t.Run(kernel, func(t *testing.T) {
			syms := kernelSyms(t, kernel)
			n := New(syms)
			f, err := os.Open(filepath.Join("testdata", kernel, "locations"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			type want struct{ loc, name string }
			var wants []want
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				fs := strings.Split(line, "\t")
				if len(fs) != 3 {
					t.Fatalf("fixture line %q: want 3 tab-separated fields", line)
				}
				if fs[1] != "-" {
					n.Learn(addr(t, syms, fs[0]), fs[1])
				}
				wants = append(wants, want{fs[0], fs[2]})
			}
			if len(wants) == 0 {
				t.Fatal("no locations in the fixture")
			}
			for _, w := range wants {
				if got := n.Name(addr(t, syms, w.loc)); got != w.name {
					t.Errorf("%s: named %q, want %q", w.loc, got, w.name)
				}
			}
		})
	}
}

func TestUnlearnedCallSitesKeepTheirFunction(t *testing.T) {
	syms := kernel510(t)
	n := New(syms)
	cases := []struct{ loc, want string }{
		// A multi-cause function before calibration, and at another call site after it.
		{"__udp4_lib_rcv+0x9a3", "kfree_skb@__udp4_lib_rcv"},
		{"udp_queue_rcv_one_skb+0x100", "kfree_skb@udp_queue_rcv_one_skb"},
		{"nf_hook_slow+0x80", "NETFILTER_DROP"},
		{"ip_rcv_core+0x50", "kfree_skb@ip_rcv_core"},
	}
	for _, c := range cases {
		if got := n.Name(addr(t, syms, c.loc)); got != c.want {
			t.Errorf("%s: named %q, want %q", c.loc, got, c.want)
		}
	}
	n.Learn(addr(t, syms, "__udp4_lib_rcv+0x9a3"), "NO_SOCKET")
	if got := n.Name(addr(t, syms, "__udp4_lib_rcv+0x9a3")); got != "NO_SOCKET" {
		t.Errorf("learned call site named %q after Learn (a stale cache?)", got)
	}
	if got := n.Name(addr(t, syms, "__udp4_lib_rcv+0x40")); got != "kfree_skb@__udp4_lib_rcv" {
		t.Errorf("another call site of __udp4_lib_rcv named %q", got)
	}
	if got := n.Name(0x1000); got != "kfree_skb@0x1000" {
		t.Errorf("an address below every symbol named %q", got)
	}
}

func TestCompilerClonesAreTheirFunction(t *testing.T) {
	syms, err := kallsyms.Parse(strings.NewReader(
		"ffffffff81000000 t enqueue_to_backlog.isra.0\nffffffff81000200 t next_fn\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := New(syms).Name(0xffffffff81000099); got != "CPU_BACKLOG" {
		t.Errorf("enqueue_to_backlog.isra.0+0x99 named %q", got)
	}
}

// What a check on a location-named reason says it cannot separate, and why a reason no call
// site frees for alone is not named.
func TestLocatedSaysWhatALocationCannotSeparate(t *testing.T) {
	n := New(kernel510(t))
	got := n.Located([]string{"SOCKET_RCVBUFF", "NO_SOCKET", "TCP_LISTEN_OVERFLOW"})
	if !strings.Contains(got["SOCKET_RCVBUFF"], "udp_mem") {
		t.Errorf("SOCKET_RCVBUFF: %q", got["SOCKET_RCVBUFF"])
	}
	if !strings.Contains(got["TCP_LISTEN_OVERFLOW"], "tcp_v4_rcv") || n.Named("TCP_LISTEN_OVERFLOW") {
		t.Errorf("TCP_LISTEN_OVERFLOW: named %v, %q", n.Named("TCP_LISTEN_OVERFLOW"), got["TCP_LISTEN_OVERFLOW"])
	}
	if n.Named("NO_SOCKET") {
		t.Error("NO_SOCKET named before any call site was learned")
	}
	n.Learn(0xffffffff98facf50+0x9a3, "NO_SOCKET")
	if !n.Named("NO_SOCKET") || !strings.Contains(n.Located([]string{"NO_SOCKET"})["NO_SOCKET"], "checksum") {
		t.Errorf("NO_SOCKET after calibration: named %v, %q", n.Named("NO_SOCKET"), n.Located([]string{"NO_SOCKET"}))
	}
}

// Every rule cites its source, and names only reasons later kernels pass (5.17 and 5.18).
func TestTableRulesCiteTheirSource(t *testing.T) {
	known := []string{"CPU_BACKLOG", "SOCKET_RCVBUFF", "NO_SOCKET", "NETFILTER_DROP"}
	for fn, r := range Table {
		if !strings.Contains(r.Source, fn+"()") {
			t.Errorf("%s: source %q does not cite the function", fn, r.Source)
		}
		if r.Reason != "" && !slices.Contains(known, r.Reason) {
			t.Errorf("%s: reason %q", fn, r.Reason)
		}
	}
}
