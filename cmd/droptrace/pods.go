// SPDX-License-Identifier: Apache-2.0

package main

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/pods"
)

// maxStateDirs bounds --runtime-state-dir: each one is listed to name a network namespace.
const maxStateDirs = 16

// podFlags say where the container runtimes keep their state, to name pods and containers.
type podFlags struct {
	stateDirs []string
}

func (pf *podFlags) set(fs *pflag.FlagSet) {
	fs.StringArrayVar(&pf.stateDirs, "runtime-state-dir", nil, "a container runtime's state directory, RUNTIME=DIR with RUNTIME containerd or cri-o (repeatable; replaces the defaults: containerd=/run/containerd/io.containerd.runtime.v2.task/k8s.io, cri-o=/run/containers/storage/overlay-containers and cri-o=/var/lib/containers/storage/overlay-containers); used to name the pod and container of a socket's owner")
}

// stateDirs parses --runtime-state-dir; nil means the defaults. Its errors are usage errors.
func (pf *podFlags) parse() ([]pods.StateDir, error) {
	if len(pf.stateDirs) > maxStateDirs {
		return nil, usagef("--runtime-state-dir given %d times: want at most %d", len(pf.stateDirs), maxStateDirs)
	}
	var out []pods.StateDir
	for _, v := range pf.stateDirs {
		rt, dir, ok := strings.Cut(v, "=")
		if !ok || !slices.Contains(pods.Runtimes, rt) || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			return nil, usagef("--runtime-state-dir %q: want RUNTIME=DIR, RUNTIME one of %s, DIR an absolute clean path", v, strings.Join(pods.Runtimes, ", "))
		}
		out = append(out, pods.StateDir{Runtime: rt, Dir: dir})
	}
	return out, nil
}
