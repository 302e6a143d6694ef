// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"slices"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// Owner is the process holding a socket, and its container as far as cgroups tell.
type Owner struct {
	PID    int
	Comm   string
	Cgroup string // the unified (cgroup v2) path, else the first non-root v1 path
	FD     int    // a descriptor of the socket in that process
}

// MaxHolders bounds the processes listed per socket: a socket shared by a pre-forked server's
// workers names a few of them, not hundreds.
const MaxHolders = 8

// FindOwners scans every process's open files once for the sockets whose inodes are given,
// and returns up to MaxHolders holders of each, lowest pid first. It is a walk of /proc/*/fd,
// so callers batch the sockets they need and cache the answer.
func FindOwners(fsys hostfs.FS, inodes map[uint64]bool) map[uint64][]Owner {
	out := map[uint64][]Owner{}
	if len(inodes) == 0 {
		return out
	}
	procs, err := fsys.ReadDir("/proc")
	if err != nil {
		return out
	}
	pids := make([]int, 0, len(procs))
	for _, p := range procs {
		if pid, err := strconv.Atoi(p.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		dir := "/proc/" + strconv.Itoa(pid)
		fds, err := fsys.ReadDir(dir + "/fd")
		if err != nil {
			continue
		}
		var info *Owner
		for _, fd := range fds {
			l, err := fsys.Readlink(dir + "/fd/" + fd.Name())
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 64)
			if err != nil || !inodes[ino] || len(out[ino]) >= MaxHolders {
				continue
			}
			n, err := strconv.Atoi(fd.Name())
			if err != nil {
				continue
			}
			if info == nil {
				info = &Owner{PID: pid, Comm: fsys.ReadTrim(dir + "/comm"), Cgroup: cgroupOf(fsys, dir+"/cgroup")}
			}
			if h := out[ino]; len(h) > 0 && h[len(h)-1].PID == pid {
				continue // another descriptor of the same process
			}
			o := *info
			o.FD = n
			out[ino] = append(out[ino], o)
		}
	}
	return out
}

// cgroupOf picks the path that names a container: cgroup v2's "0::/path", else the first
// v1 hierarchy that is not the root.
func cgroupOf(fsys hostfs.FS, name string) string {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return ""
	}
	var v1 string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" && parts[2] != "/" {
			return parts[2]
		}
		if v1 == "" && parts[2] != "/" {
			v1 = parts[2]
		}
	}
	return v1
}
