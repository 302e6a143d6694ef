// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A never-read UDP socket held by a process in a cgroup made as the kubelet's systemd driver
// makes a burstable pod's containerd container, with that container's config.json in a
// runtime state directory droptrace is pointed at: with no other flag, the port entry names
// the pod, container and pod UID, and the socket_rcvbuf verdict says the pod.
func TestPrivSocketDropsNamedByPod(t *testing.T) {
	requireRoot(t)
	uid, id := podIDs(t)
	const pod, namespace, container = "web-0", "default", "app"
	scope := podCgroup(t, uid, id)

	state := t.TempDir()
	cfg := fmt.Sprintf(`{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"container",`+
		`"io.kubernetes.cri.container-name":%q,"io.kubernetes.cri.sandbox-name":%q,"io.kubernetes.cri.sandbox-namespace":%q,`+
		`"io.kubernetes.cri.sandbox-uid":%q},"linux":{"namespaces":[{"type":"network","path":"/proc/1/ns/net"}]}}`,
		container, pod, namespace, uid)
	if err := os.MkdirAll(filepath.Join(state, "k8s.io", id), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "k8s.io", id, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	// The socket is handed to a child in the pod's cgroup and closed here: the child is its
	// only holder, so it is the owner droptrace finds.
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.SetReadBuffer(2048); err != nil {
		t.Fatal(err)
	}
	port := uint16(sock.LocalAddr().(*net.UDPAddr).Port)
	f, err := sock.File()
	sock.Close()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "600")
	child.ExtraFiles = []*os.File{f}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() {
		child.Process.Kill()
		child.Wait()
	})
	if err := os.WriteFile(filepath.Join(scope, "cgroup.procs"), []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}

	rec := session(t, func() { sendUDP(t, port, 3000) }, "--runtime-state-dir", "containerd="+filepath.Join(state, "k8s.io"))
	kernel := socketDrops(t, port)
	found := false
	for _, p := range rec.summary.Ports {
		if p.Reason != "SOCKET_RCVBUFF" || p.Port != port {
			continue
		}
		found = true
		if p.Pod != namespace+"/"+pod || p.Container != container || p.PodUID != uid || p.PID != child.Process.Pid ||
			p.Comm != "sleep" || kernel == 0 || p.Drops != kernel || p.SocketDrops != kernel {
			t.Errorf("port entry %+v: want pod %s/%s, container %s, pod_uid %s, pid %d (sleep), drops and socket_drops %d",
				p, namespace, pod, container, uid, child.Process.Pid, kernel)
		}
	}
	if !found {
		t.Fatalf("summary ports %+v do not list SOCKET_RCVBUFF on port %d", rec.summary.Ports, port)
	}
	var cause string
	for _, v := range rec.summary.Verdicts {
		if v.ID == "socket_rcvbuf" {
			cause = v.Cause
		}
	}
	want := fmt.Sprintf("socket of pid %d (sleep) in pod %s/%s container %s)", child.Process.Pid, namespace, pod, container)
	at := fmt.Sprintf("udp port %d on 127.0.0.1 in netns %d (%d drops; ", port, selfNetns(t), kernel)
	if !strings.Contains(cause, at) || !strings.Contains(cause, want) {
		t.Errorf("socket_rcvbuf verdict %q does not say %q and %q", cause, at, want)
	}
}

// podIDs are a fresh pod UID and container ID, so a real pod on the host is never touched.
func podIDs(t *testing.T) (uid, id string) {
	t.Helper()
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString(b[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], hex.EncodeToString(b[16:])
}

// podCgroup makes the cgroup the kubelet's systemd driver gives a burstable pod's containerd
// container under the host's cgroup2 mount, and removes what it made when the test ends
// (after the processes put in it are gone).
func podCgroup(t *testing.T, uid, id string) string {
	t.Helper()
	mnt := cgroup2Mount(t)
	dir := mnt
	for _, c := range []string{"kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice", "cri-containerd-" + id + ".scope"} {
		dir = filepath.Join(dir, c)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue // a real node's kubepods.slice: kept
		}
		if err != nil {
			t.Fatal(err)
		}
		made := dir
		t.Cleanup(func() {
			// The killed child leaves the cgroup once reaped; rmdir is refused (EBUSY)
			// until the kernel has moved it out.
			var err error
			for range 100 {
				if err = syscall.Rmdir(made); err == nil || !errors.Is(err, syscall.EBUSY) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("remove test cgroup %s: %v", made, err)
			}
		})
	}
	return dir
}

// cgroup2Mount is where the unified cgroup hierarchy is mounted: /sys/fs/cgroup on a v2
// host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if fields := strings.Fields(pre); ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4]
		}
	}
	t.Fatal("no cgroup2 hierarchy mounted: a pod's cgroup cannot be made (mount -t cgroup2 none /sys/fs/cgroup/unified)")
	return ""
}
