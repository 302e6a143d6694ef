// SPDX-License-Identifier: Apache-2.0

// Package rank orders named counts the way droptrace lists them to people: largest first,
// ties by name. Go's map order is random, so without the tie-break a live view redrawn from
// the same counts would reshuffle equal rows, and two reports of one recording would differ.
package rank

import (
	"cmp"
	"slices"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// Entry is one named count, e.g. a drop reason and how many drops it had.
type Entry struct {
	Key   string
	Count uint64
}

// ByCount returns at most n of m's entries, largest count first and ties by key; a negative
// n returns them all, as in strings.SplitN. Zero counts are left out: a reason whose count is
// zero in this interval did not happen in it, and listing it would crowd out one that did.
func ByCount(m map[string]uint64, n int) []Entry {
	out := make([]Entry, 0, len(m))
	for k, v := range m {
		if v > 0 {
			out = append(out, Entry{k, v})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Total is the sum of m's counts, saturating (record.AddSat): counts read from a file must
// not wrap round to a small total.
func Total(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s = record.AddSat(s, v)
	}
	return s
}
