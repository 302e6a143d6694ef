// SPDX-License-Identifier: Apache-2.0

// Command report prints the kernel tests' results from the directories scripts/vmtest.sh left,
// one per kernel, and exits 1 if any kernel failed.
package main

import (
	"fmt"
	"os"

	"github.com/droptrace/droptrace/internal/vmtest"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: report RESULT-DIR...")
		os.Exit(2)
	}
	var runs []*vmtest.Run
	failed := false
	for _, dir := range os.Args[1:] {
		r := vmtest.Load(dir)
		runs = append(runs, r)
		failed = failed || !r.Passed()
	}
	vmtest.Write(os.Stdout, runs)
	if failed {
		os.Exit(1)
	}
}
