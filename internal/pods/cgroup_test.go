// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"strings"
	"testing"
)

const (
	uid = "7f3c2a4e-9b1d-4c8e-a6f2-3d5e8b9c1a20"
	us  = "7f3c2a4e_9b1d_4c8e_a6f2_3d5e8b9c1a20"
	cid = "d0f631ca1ddba8db3bcfcb9e057cdc98d0379f1bee00e75a545147a27dadd982"
)

// The paths the kubelet's two cgroup drivers make, as found on nodes with each runtime.
func TestParseCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Ref
	}{
		// systemd driver (cgroup v1 and v2 alike)
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us + ".slice/cri-containerd-" + cid + ".scope",
			Ref{uid, QoSBurstable, RuntimeContainerd, cid}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + us + ".slice/crio-" + cid + ".scope",
			Ref{uid, QoSBestEffort, RuntimeCRIO, cid}},
		{"/kubepods.slice/kubepods-pod" + us + ".slice/docker-" + cid + ".scope", Ref{uid, QoSGuaranteed, RuntimeDocker, cid}},
		// CRI-O's conmon and nested cgroups below the container's (systemd in a container)
		{"/kubepods.slice/kubepods-pod" + us + ".slice/crio-conmon-" + cid + ".scope", Ref{uid, QoSGuaranteed, "", ""}},
		{"/kubepods.slice/kubepods-pod" + us + ".slice/crio-" + cid + ".scope/container", Ref{uid, QoSGuaranteed, RuntimeCRIO, cid}},
		// the pod's own cgroup
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us + ".slice", Ref{uid, QoSBurstable, "", ""}},
		// kind: the kubelet's --cgroup-root is a slice of the node container's
		{"/system.slice/docker-" + cid + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + us + ".slice/cri-containerd-" + cid + ".scope",
			Ref{uid, QoSBestEffort, RuntimeContainerd, cid}},
		// cgroupfs driver
		{"/kubepods/burstable/pod" + uid + "/" + cid, Ref{uid, QoSBurstable, "", cid}},
		{"/kubepods/pod" + uid + "/" + cid, Ref{uid, QoSGuaranteed, "", cid}},
		{"/kubepods/besteffort/pod" + uid + "/crio-" + cid, Ref{uid, QoSBestEffort, RuntimeCRIO, cid}},
		// a static pod's UID is a hash
		{"/kubepods/pod6a5e3b9f0c1d2e3f4a5b6c7d8e9f0a1b/" + cid, Ref{"6a5e3b9f0c1d2e3f4a5b6c7d8e9f0a1b", QoSGuaranteed, "", cid}},
		// not a container ID below the pod: the pod only
		{"/kubepods/pod" + uid + "/../../etc", Ref{uid, QoSGuaranteed, "", ""}},
		{"/kubepods.slice/kubepods-pod" + us + ".slice/cri-containerd-../../x.scope", Ref{uid, QoSGuaranteed, "", ""}},
	} {
		got, ok := ParseCgroupPath(tc.path)
		if !ok || got != tc.want {
			t.Errorf("ParseCgroupPath(%q) = %+v, %v; want %+v", tc.path, got, ok, tc.want)
		}
	}
	for _, path := range []string{
		"", "/", "/system.slice/containerd.service", "/user.slice/user-1000.slice/session-2.scope",
		"/kubepods.slice", "/kubepods/burstable", "/pod" + uid + "/" + cid, "/docker/pod" + uid + "/" + cid,
		"/kubepods.slice/burstable-pod" + us + ".slice", "/kubepods/burstable/pod" + uid[:4],
		"/kubepods/pod../" + cid, "/kubepods.slice/kubepods-pod" + strings.Repeat("a", 65) + ".slice",
		"/kubepods.slice/-pod" + us + ".slice", "/kubepods.slice/burstable-besteffort-pod" + us + ".slice",
	} {
		if got, ok := ParseCgroupPath(path); ok {
			t.Errorf("ParseCgroupPath(%q) = %+v, want no pod", path, got)
		}
	}
}

// Every line of /proc/<pid>/cgroup is tried: on a hybrid host the unified line may be the
// runtime's service while the v1 lines are the container's.
func TestParseProcCgroup(t *testing.T) {
	pod := "/kubepods/burstable/pod" + uid
	for _, tc := range []struct {
		name, text string
		want       Ref
		ok         bool
	}{
		{"v2", "0::" + pod + "/" + cid + "\n", Ref{uid, QoSBurstable, "", cid}, true},
		{"v1 hybrid", "11:memory:" + pod + "/" + cid + "\n1:name=systemd:" + pod + "/" + cid + "\n0::/system.slice/containerd.service\n", Ref{uid, QoSBurstable, "", cid}, true},
		{"the container over the pod", "2:cpuset:" + pod + "\n1:memory:" + pod + "/" + cid + "\n", Ref{uid, QoSBurstable, "", cid}, true},
		{"the pod only", "2:cpuset:" + pod + "\n", Ref{uid, QoSBurstable, "", ""}, true},
		{"no pod", "0::/user.slice/user-0.slice/session-1.scope\nnonsense\n", Ref{}, false},
		{"empty", "", Ref{}, false},
	} {
		got, ok := ParseProcCgroup(strings.NewReader(tc.text))
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + us + ".slice/cri-containerd-" + cid + ".scope\n")
	f.Add("11:memory:/kubepods/besteffort/pod" + uid + "/" + cid + "\n0::/\n")
	f.Add("0::/kubepods.slice/-pod.slice\n")
	f.Fuzz(func(t *testing.T, text string) {
		ref, ok := ParseProcCgroup(strings.NewReader(text))
		if !ok {
			return
		}
		if !validUID(ref.PodUID) || ref.ID != "" && !validID(ref.ID) {
			t.Errorf("%q gave %+v", text, ref)
		}
	})
}
