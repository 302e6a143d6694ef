// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// processCPU is the CPU time of the whole process, every thread (the garbage collector's too).
func processCPU(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}

// fillGeneration puts keys made-up keys into the drop_counts map BPF counts into, each with a
// count on every possible CPU, as an interval with drops of that many keys on every CPU leaves
// it; and gives every CPU's cache slots to the first of them.
func fillGeneration(b *testing.B, tr *Tracer, keys int) {
	ks := make([]dropsDropKey, keys)
	vs := make([]uint64, keys*tr.ncpu)
	for i := range ks {
		ks[i] = dropsDropKey{Location: 0xffffffff81000000 + uint64(i%97)*64, Reason: 2 + uint32(i%5),
			Netns: 4026531840 + uint32(i/3), Ifindex: 1 + uint32(i%7), L3: EthIPv4, L4: 17}
	}
	for i := range vs {
		vs[i] = uint64(i%13) + 1
	}
	m := tr.dropMaps()[tr.active]
	if _, err := m.BatchUpdate(ks, vs, nil); err != nil {
		b.Fatalf("fill %s: %v", dropCountsMaps[tr.active], err)
	}
	pcs := make([]dropsDropCpu, tr.ncpu)
	for c := range pcs {
		for i := range pcs[c].Slots {
			k := ks[i%keys]
			pcs[c].Slots[i] = dropsDropSlot{Count: 3, Key: k, Seal: sealOf(k)}
		}
	}
	if err := tr.dropsM.DropPercpu.Put(uint32(0), pcs); err != nil {
		b.Fatal(err)
	}
	// The garbage of filling is collected here, not while the reads are measured.
	runtime.GC()
}

// BenchmarkPrivMapRead measures the CPU time (cpu-ns/interval, the process's, all threads) of
// what a session does with the BPF maps each interval, on this host's possible CPUs:
// ReadDropsAndStats (inside the /proc bracket), ReadSockDrops (the flip and the drains) and
// ReadNetRx, with every interval's generation holding the given number of keys, each counted on
// every CPU, in two orders (see below). iterate reads the same drop_counts map key by key, as before batch lookups.
// Not a test: run with -bench on hosts and in guests of many CPUs (docs/performance.md).
func BenchmarkPrivMapRead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("SKIPPED: needs root")
	}
	for _, keys := range []int{300, 1000, 3000} {
		// interval: the maps read inside the /proc bracket, then the flip and its drain, as
		// sample.Reader does; flip-first: the flip and drain first, so that the bracket's read
		// finds the new generation nearly empty.
		for _, flipFirst := range []bool{false, true} {
			name := map[bool]string{false: "interval", true: "flip-first"}[flipFirst]
			b.Run(fmt.Sprintf("keys=%d/%s", keys, name), func(b *testing.B) {
				tr, err := Open(Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				var cpu int64
				for b.Loop() {
					fillGeneration(b, tr, keys)
					t0 := processCPU(b)
					if flipFirst {
						if _, err := tr.ReadSockDrops(); err != nil {
							b.Fatal(err)
						}
					}
					if _, _, err := tr.ReadDropsAndStats(); err != nil {
						b.Fatal(err)
					}
					if !flipFirst {
						if _, err := tr.ReadSockDrops(); err != nil {
							b.Fatal(err)
						}
					}
					if _, err := tr.ReadNetRx(); err != nil {
						b.Fatal(err)
					}
					cpu += processCPU(b) - t0
				}
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/interval")
				b.ReportMetric(float64(tr.ncpu), "cpus")
			})
		}
		for _, batch := range []bool{true, false} {
			name := map[bool]string{true: "batch", false: "iterate"}[batch]
			b.Run(fmt.Sprintf("keys=%d/%s", keys, name), func(b *testing.B) {
				tr, err := Open(Options{NoNetRx: true})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				fillGeneration(b, tr, keys)
				m := tr.dropMaps()[tr.active]
				var cpu int64
				for b.Loop() {
					n := 0
					count := func(dropsDropKey, []uint64) { n++ }
					t0 := processCPU(b)
					if batch {
						err = readMap(m, false, tr.ncpu, &tr.dropBuf, count)
					} else {
						err = readMapOneByOne(m, false, true, count)
					}
					cpu += processCPU(b) - t0
					if err != nil || n < keys {
						b.Fatalf("read %d keys of %d: %v", n, keys, err)
					}
				}
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/read")
			})
		}
	}
}

// BenchmarkPrivDropCost measures what counting a drop costs the kfree_skb program (BPF run-time
// statistics, ns per run), for drops counted in their cache slot (slot) and for drops whose
// slot another key holds, counted in the drop_counts map (map). Not a test: compare builds
// with it (docs/performance.md).
func BenchmarkPrivDropCost(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("SKIPPED: needs root")
	}
	for _, path := range []string{"slot", "map"} {
		b.Run(path, func(b *testing.B) {
			tr, err := Open(Options{NoNetRx: true})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			if path == "map" {
				takeSlots(b, tr)
			}
			stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
			if err != nil {
				b.Fatal(err)
			}
			defer stats.Close()
			prog := tr.progs[dropTracepoint.name]
			s0, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
			for b.Loop() {
				if _, err := c.WriteToUDP([]byte("droptrace"), to); err != nil {
					b.Fatal(err)
				}
			}
			s1, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			if runs := s1.RunCount - s0.RunCount; runs > 0 {
				b.ReportMetric(float64(s1.Runtime-s0.Runtime)/float64(runs), "bpf-ns/run")
			}
		})
	}
}
