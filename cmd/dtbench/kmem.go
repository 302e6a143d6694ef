// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/droptrace/droptrace/internal/tracer"
)

// printKernelMemory prints the kernel memory of droptrace's maps for each number of possible
// CPUs, without and with events (default ring buffer), as a Markdown table.
func printKernelMemory(w io.Writer, cpus []int) error {
	var hdr, rule strings.Builder
	for _, n := range cpus {
		fmt.Fprintf(&hdr, " %d CPUs |", n)
		rule.WriteString("---:|")
	}
	fmt.Fprintf(w, "| map | type | key | value | entries |%s\n|---|---|---:|---:|---:|%s\n", hdr.String(), rule.String())
	cols := make([][]tracer.MapMemory, len(cpus))
	total := make([]uint64, len(cpus))
	for i, n := range cpus {
		m, err := tracer.KernelMemory(tracer.Options{Events: true}, n)
		if err != nil {
			return err
		}
		cols[i] = m
		for _, x := range m {
			total[i] += x.Bytes
		}
	}
	for j, m := range cols[0] {
		// Entries that depend on the CPUs (drop_counts) are listed for each column.
		entries := fmt.Sprint(m.MaxEntries)
		if m.MaxEntries != cols[len(cols)-1][j].MaxEntries {
			var e []string
			for i := range cpus {
				e = append(e, fmt.Sprint(cols[i][j].MaxEntries))
			}
			entries = strings.Join(e, " / ")
		}
		fmt.Fprintf(w, "| %s %s | %v | %d | %d | %s |", m.Object, m.Name, m.Type, m.KeySize, m.ValueSize, entries)
		for i := range cpus {
			fmt.Fprintf(w, " %s |", mib(cols[i][j].Bytes))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, "| **all maps, --events** | | | | |")
	for i := range cpus {
		fmt.Fprintf(w, " **%s** |", mib(total[i]))
	}
	fmt.Fprint(w, "\n| **all maps, without --events** | | | | |")
	for _, n := range cpus {
		m, err := tracer.KernelMemory(tracer.Options{}, n)
		if err != nil {
			return err
		}
		var t uint64
		for _, x := range m {
			t += x.Bytes
		}
		fmt.Fprintf(w, " **%s** |", mib(t))
	}
	fmt.Fprintln(w)
	return nil
}

func mib(b uint64) string {
	if b < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
}
