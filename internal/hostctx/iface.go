// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"fmt"
	"math/bits"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/hostfs"
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

// Interfaces reads every interface of fsys's namespace but lo.
func Interfaces(fsys hostfs.FS) []Iface {
	ents, _ := fsys.ReadDir(classNet)
	var out []Iface
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		base := path.Join(classNet, e.Name())
		f := Iface{Name: e.Name(), Threaded: fsys.ReadTrim(path.Join(base, "threaded"))}
		f.RxDropped, _ = strconv.ParseUint(fsys.ReadTrim(path.Join(base, "statistics/rx_dropped")), 10, 64)
		qs, _ := fsys.Glob(path.Join(base, "queues/rx-*"))
		sort.Slice(qs, func(i, j int) bool { return queueNum(qs[i]) < queueNum(qs[j]) })
		for _, q := range qs {
			f.RxQueues++
			f.RPSCPUs = append(f.RPSCPUs, ParseCPUMask(fsys.ReadTrim(path.Join(q, "rps_cpus"))))
			n, _ := strconv.Atoi(fsys.ReadTrim(path.Join(q, "rps_flow_cnt")))
			f.RPSFlowCnt = append(f.RPSFlowCnt, n)
		}
		out = append(out, f)
	}
	return out
}

// RxDropped reads just the rx_dropped counters, each interval.
func RxDropped(fsys hostfs.FS) map[string]uint64 {
	ents, _ := fsys.ReadDir(classNet)
	out := map[string]uint64{}
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		v, err := strconv.ParseUint(fsys.ReadTrim(path.Join(classNet, e.Name(), "statistics/rx_dropped")), 10, 64)
		if err == nil {
			out[e.Name()] = v
		}
	}
	return out
}

// classNet lists the interfaces of the namespace sysfs was mounted in.
const classNet = "/sys/class/net"

func queueNum(p string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(path.Base(p), "rx-"))
	return n
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
