// SPDX-License-Identifier: Apache-2.0

// Package hostctx collects the host context a verdict needs: which IRQs belong to which
// network interface and RX queue, where they are allowed to run, whether irqbalance runs, how
// each interface steers packets (RPS, threaded NAPI), and its own rx_dropped counter.
package hostctx

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// IRQ is one numbered line of /proc/interrupts.
type IRQ struct {
	Num    int
	Counts map[int]uint64 // by CPU id
	Desc   string         // chip, hwirq and action names, as printed
	Name   string         // the last word: the action (e.g. "eth0-TxRx-0", "virtio2-input.0")
}

// ParseInterrupts reads /proc/interrupts. The header names the CPU columns (CPU0 CPU1 ...,
// online CPUs only); numbered lines have one count per column, then a description. Lines of
// architecture counters (NMI:, LOC:) are skipped: they are not device IRQs.
func ParseInterrupts(r io.Reader) ([]IRQ, error) {
	sc := fieldscan.New(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cpus []int
	var out []IRQ
	for sc.Scan() {
		line, f := sc.Line(), sc.Fields()
		if cpus == nil {
			for _, h := range f {
				id, err := strconv.Atoi(strings.TrimPrefix(h, "CPU"))
				if !strings.HasPrefix(h, "CPU") || err != nil {
					return nil, fmt.Errorf("interrupts line %d: header column %q is not CPU<n>", line, h)
				}
				cpus = append(cpus, id)
			}
			continue
		}
		num, err := strconv.Atoi(strings.TrimSuffix(f[0], ":"))
		if err != nil || !strings.HasSuffix(f[0], ":") {
			continue // NMI:, LOC:, ERR: ...
		}
		if len(f) < 1+len(cpus) {
			return nil, fmt.Errorf("interrupts line %d: IRQ %d has %d counts for %d CPUs", line, num, len(f)-1, len(cpus))
		}
		irq := IRQ{Num: num, Counts: make(map[int]uint64, len(cpus))}
		for i, cpu := range cpus {
			v, err := strconv.ParseUint(f[1+i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("interrupts line %d: IRQ %d CPU%d count %q is not a number", line, num, cpu, f[1+i])
			}
			irq.Counts[cpu] = v
		}
		rest := f[1+len(cpus):]
		irq.Desc = strings.Join(rest, " ")
		if len(rest) > 0 {
			irq.Name = rest[len(rest)-1]
		}
		out = append(out, irq)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read interrupts: %w", err)
	}
	if cpus == nil {
		return nil, fmt.Errorf("interrupts: no header line")
	}
	return out, nil
}

// SubCounts returns per-CPU deltas of one IRQ between two reads (counts are unsigned int in
// the kernel: they wrap at 32 bits on some architectures, so a decrease is taken as a wrap).
func SubCounts(prev, cur map[int]uint64) map[int]uint64 {
	out := map[int]uint64{}
	for cpu, v := range cur {
		p, ok := prev[cpu]
		if !ok {
			continue
		}
		if v >= p {
			out[cpu] = v - p
		} else {
			out[cpu] = uint64(uint32(v) - uint32(p))
		}
	}
	return out
}
