// SPDX-License-Identifier: Apache-2.0

package main

import "testing"

// A session on a large host runs with few processors; a small host, a container's limit and
// an operator's GOMAXPROCS are left as they are.
func TestSessionProcs(t *testing.T) {
	for _, tc := range []struct {
		env       string
		cur, want int
	}{
		{"", 256, maxProcs},
		{"", maxProcs + 1, maxProcs},
		{"", 2, 2},
		{"", maxProcs, maxProcs},
		{"64", 64, 64},
	} {
		if got := sessionProcs(tc.env, tc.cur); got != tc.want {
			t.Errorf("sessionProcs(%q, %d) = %d, want %d", tc.env, tc.cur, got, tc.want)
		}
	}
}
