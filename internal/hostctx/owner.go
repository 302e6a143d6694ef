// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/fieldscan"
	"github.com/droptrace/droptrace/internal/hostfs"
)

// UDPSocket is one line of /proc/net/udp or udp6 (net/ipv4/udp.c udp4_format_sock).
type UDPSocket struct {
	LocalPort uint16
	RxQueue   uint64 // bytes waiting to be read
	Inode     uint64
	Drops     uint64 // the socket's own drop counter (sk_drops)
}

// ParseProcNetUDP reads /proc/net/udp or /proc/net/udp6: a header, then
// "sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops".
func ParseProcNetUDP(r io.Reader) ([]UDPSocket, error) {
	var out []UDPSocket
	sc := fieldscan.New(r)
	for sc.Scan() {
		line, f := sc.Line(), sc.Fields()
		if line == 1 {
			continue // the header
		}
		if len(f) < 13 {
			return nil, fmt.Errorf("udp line %d: %d fields, want 13", line, len(f))
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		port, err := strconv.ParseUint(portHex, 16, 16)
		if !ok || err != nil {
			return nil, fmt.Errorf("udp line %d: local address %q has no hex port", line, f[1])
		}
		_, rxq, _ := strings.Cut(f[4], ":")
		rx, _ := strconv.ParseUint(rxq, 16, 64)
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("udp line %d: inode %q is not a number", line, f[9])
		}
		drops, err := strconv.ParseUint(f[12], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("udp line %d: drops %q is not a number", line, f[12])
		}
		out = append(out, UDPSocket{LocalPort: uint16(port), RxQueue: rx, Inode: inode, Drops: drops})
	}
	return out, sc.Err()
}

// Owner is the process holding a socket, and its container as far as cgroups tell.
type Owner struct {
	PID    int
	Comm   string
	Cgroup string // the unified (cgroup v2) path, else the first non-root v1 path
}

// FindOwner scans every process's open files for socket:[inode]. It is a walk of /proc/*/fd,
// so callers do it once per socket, when a verdict needs it, not every interval.
func FindOwner(fsys hostfs.FS, inode uint64) (Owner, bool) {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	procs, err := fsys.ReadDir("/proc")
	if err != nil {
		return Owner{}, false
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := path.Join("/proc", p.Name(), "fd")
		fds, err := fsys.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := fsys.Readlink(path.Join(fdDir, fd.Name())); err == nil && l == want {
				return Owner{PID: pid, Comm: fsys.ReadTrim(path.Join("/proc", p.Name(), "comm")),
					Cgroup: cgroupOf(fsys, path.Join("/proc", p.Name(), "cgroup"))}, true
			}
		}
	}
	return Owner{}, false
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
