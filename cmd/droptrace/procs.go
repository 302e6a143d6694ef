// SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"runtime"
)

// maxProcs caps the Go scheduler's processors for a tracing session. Its work is a few
// goroutines (ring buffer reader, interval sampler, sinks, metrics), while the runtime's own
// cost of an interval (idle GC workers and spinning threads on every P) grows with GOMAXPROCS:
// left at every CPU of a large host, that cost outgrows the reading of the BPF maps it serves
// (docs/performance.md, map reads per interval).
const maxProcs = 4

// sessionProcs is the GOMAXPROCS a session runs with: the runtime's default (every CPU, or a
// container's CPU limit) capped at maxProcs, unless the GOMAXPROCS variable names a value.
func sessionProcs(env string, current int) int {
	if env != "" || current <= maxProcs {
		return current
	}
	return maxProcs
}

// capProcs applies sessionProcs to this process.
func capProcs() {
	cur := runtime.GOMAXPROCS(0)
	if n := sessionProcs(os.Getenv("GOMAXPROCS"), cur); n != cur {
		runtime.GOMAXPROCS(n)
	}
}
