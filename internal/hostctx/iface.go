// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Iface is how an interface of this namespace steers received packets.
type Iface struct {
	Name       string
	RxQueues   int
	RPSCPUs    [][]int // per RX queue: CPUs RPS steers to (empty: RPS off)
	RPSFlowCnt []int   // per RX queue: rps_flow_cnt (RFS)
	Threaded   string  // /sys/class/net/X/threaded: "0", "1"; "" when absent
	RxDropped  uint64  // core rx_dropped: includes the device's backlog drops
}

// Interfaces reads every interface of this namespace but lo.
func Interfaces() []Iface {
	ents, _ := os.ReadDir(filepath.Join(Sys, "class/net"))
	var out []Iface
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		base := filepath.Join(Sys, "class/net", e.Name())
		f := Iface{Name: e.Name(), Threaded: readTrim(filepath.Join(base, "threaded"))}
		f.RxDropped, _ = strconv.ParseUint(readTrim(filepath.Join(base, "statistics/rx_dropped")), 10, 64)
		qs, _ := filepath.Glob(filepath.Join(base, "queues/rx-*"))
		sort.Slice(qs, func(i, j int) bool { return queueNum(qs[i]) < queueNum(qs[j]) })
		for _, q := range qs {
			f.RxQueues++
			f.RPSCPUs = append(f.RPSCPUs, ParseCPUMask(readTrim(filepath.Join(q, "rps_cpus"))))
			n, _ := strconv.Atoi(readTrim(filepath.Join(q, "rps_flow_cnt")))
			f.RPSFlowCnt = append(f.RPSFlowCnt, n)
		}
		out = append(out, f)
	}
	return out
}

// RxDropped reads just the rx_dropped counters, each interval.
func RxDropped() map[string]uint64 {
	ents, _ := os.ReadDir(filepath.Join(Sys, "class/net"))
	out := map[string]uint64{}
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		v, err := strconv.ParseUint(readTrim(filepath.Join(Sys, "class/net", e.Name(), "statistics/rx_dropped")), 10, 64)
		if err == nil {
			out[e.Name()] = v
		}
	}
	return out
}

func queueNum(p string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(p), "rx-"))
	return n
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ParseCPUMask reads a hex CPU mask as the kernel prints it ("ff,00000000" with comma
// separated 32-bit words, most significant first).
func ParseCPUMask(s string) []int {
	var out []int
	words := strings.Split(s, ",")
	for i := range words {
		w := words[len(words)-1-i]
		v, err := strconv.ParseUint(w, 16, 32)
		if err != nil {
			return nil
		}
		for v != 0 {
			b := bits.TrailingZeros64(v)
			out = append(out, i*32+b)
			v &^= 1 << b
		}
	}
	sort.Ints(out)
	return out
}

// FormatCPUMask is the inverse, for the fixes droptrace suggests ("echo 6 > rps_cpus").
func FormatCPUMask(cpus []int) string {
	var words []uint32
	for _, c := range cpus {
		for len(words) <= c/32 {
			words = append(words, 0)
		}
		words[c/32] |= 1 << (c % 32)
	}
	if len(words) == 0 {
		return "0"
	}
	parts := make([]string, len(words))
	for i, w := range words {
		f := "%08x"
		if i == len(words)-1 {
			f = "%x"
		}
		parts[len(words)-1-i] = fmt.Sprintf(f, w)
	}
	return strings.Join(parts, ",")
}
