// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"bufio"
	"io"
	"strings"
)

// QoS classes as the kubelet names its cgroups; a Guaranteed pod sits right under kubepods.
const (
	QoSGuaranteed = "guaranteed"
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
)

// Container runtimes as told by the container's cgroup name (the systemd driver's scope
// prefix, or CRI-O's with the cgroupfs driver). The cgroupfs driver names containerd's and
// Docker's containers by bare ID: Runtime is then "".
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
)

// Ref is what a kubelet-made cgroup path says about a process: its pod and, below the pod's
// cgroup, its container.
type Ref struct {
	PodUID  string // with dashes, as the API server shows it
	QoS     string
	Runtime string // "" when the path does not say
	ID      string // the container ID, "" for a process in the pod's own cgroup (or conmon)
}

// ParseCgroupPath reads a cgroup path made by the kubelet's systemd driver
// (/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID with _>.slice/
// cri-containerd-<ID>.scope) or cgroupfs driver (/kubepods/burstable/pod<UID>/<ID>), in any
// hierarchy and under any parent (kind nests them under the node container's cgroup). ok is
// false for a path that names no pod.
func ParseCgroupPath(path string) (ref Ref, ok bool) {
	comps := strings.Split(strings.Trim(path, "/"), "/")
	for i, c := range comps {
		var sysd bool
		if ref, sysd, ok = podComponent(comps[:i], c); !ok {
			continue
		}
		if i+1 < len(comps) {
			ref.Runtime, ref.ID = containerComponent(comps[i+1], sysd)
		}
		return ref, true
	}
	return Ref{}, false
}

// podComponent says whether c, under parents, is a pod's cgroup, and whether the systemd
// driver named it.
func podComponent(parents []string, c string) (Ref, bool, bool) {
	if slice, ok := strings.CutSuffix(c, ".slice"); ok {
		// kubepods[-<qos>]-pod<uid>.slice, possibly with a prefix of the kubelet's
		// --cgroup-root slice (kubelet-kubepods-…); '-' is the systemd slice separator,
		// so the UID's own dashes are written as '_'.
		i := strings.LastIndex(slice, "-pod")
		if i < 0 {
			return Ref{}, false, false
		}
		uid := strings.ReplaceAll(slice[i+len("-pod"):], "_", "-")
		words := strings.Split(slice[:i], "-")
		qos, last := QoSGuaranteed, words[len(words)-1]
		if last == QoSBurstable || last == QoSBestEffort {
			qos, words = last, words[:len(words)-1]
		}
		if len(words) == 0 || words[len(words)-1] != "kubepods" || !validUID(uid) {
			return Ref{}, false, false
		}
		return Ref{PodUID: uid, QoS: qos}, true, true
	}
	uid, ok := strings.CutPrefix(c, "pod")
	if !ok || !validUID(uid) || len(parents) == 0 {
		return Ref{}, false, false
	}
	qos, up := QoSGuaranteed, parents[len(parents)-1]
	if up == QoSBurstable || up == QoSBestEffort {
		if len(parents) < 2 {
			return Ref{}, false, false
		}
		qos, up = up, parents[len(parents)-2]
	}
	if up != "kubepods" {
		return Ref{}, false, false
	}
	return Ref{PodUID: uid, QoS: qos}, false, true
}

// containerComponent reads the container's cgroup name below its pod's.
func containerComponent(c string, sysd bool) (runtime, id string) {
	if sysd {
		scope, ok := strings.CutSuffix(c, ".scope")
		if !ok {
			return "", ""
		}
		c = scope
	}
	for _, p := range []struct{ prefix, runtime string }{
		{"crio-conmon-", ""}, // CRI-O's monitor process, not the container
		{"cri-containerd-", RuntimeContainerd},
		{"crio-", RuntimeCRIO},
		{"docker-", RuntimeDocker},
	} {
		if rest, ok := strings.CutPrefix(c, p.prefix); ok {
			if p.runtime == "" || !validID(rest) {
				return "", ""
			}
			return p.runtime, rest
		}
	}
	if !sysd && validID(c) {
		return "", c
	}
	return "", ""
}

// validUID accepts a pod UID: a UUID, or a static pod's hash (hex without dashes).
func validUID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !isHex(r) && r != '-' {
			return false
		}
	}
	return true
}

// validID accepts a container ID: lower-case hex, as every CRI runtime makes them. Being
// only hex, it is also safe as one component of a path under a state directory.
func validID(s string) bool {
	if len(s) < 12 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !isHex(r) {
			return false
		}
	}
	return true
}

func isHex(r rune) bool { return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' }

// maxCgroupFile bounds what is read of /proc/<pid>/cgroup: one line per v1 hierarchy.
const maxCgroupFile = 64 << 10

// ParseProcCgroup finds the pod in /proc/<pid>/cgroup: the first line, v2 ("0::/…") or v1
// ("4:memory:/…"), whose path a kubelet made, preferring one that also names the container.
// On a hybrid host the unified line can be the runtime's service while the v1 lines are the
// pod's, or the other way round, so every line is tried.
func ParseProcCgroup(r io.Reader) (Ref, bool) {
	var pod Ref
	var found bool
	sc := bufio.NewScanner(io.LimitReader(r, maxCgroupFile))
	sc.Buffer(make([]byte, 4096), maxCgroupFile)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ref, ok := ParseCgroupPath(parts[2])
		switch {
		case ok && ref.ID != "":
			return ref, true
		case ok && !found:
			pod, found = ref, true
		}
	}
	return pod, found
}
