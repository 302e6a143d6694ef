// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// commit is set at build time with -ldflags "-X main.commit=..." (make build, make dist); a
// plain `go build` in a checkout falls back to the revision Go stamps into the binary.
var commit = ""

// printVersion says which droptrace this is. The first line is the one earlier versions
// printed; the others name what a bug report needs: the source, the toolchain and the BPF
// objects actually embedded.
func printVersion(w io.Writer) {
	fmt.Fprintf(w, "droptrace %s (JSON schema %d)\n", version, record.SchemaVersion)
	fmt.Fprintf(w, "commit:      %s\n", buildCommit())
	fmt.Fprintf(w, "go:          %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "bpf objects: sha256:%s\n", tracer.ObjectsSHA256())
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + dirty
}
