// SPDX-License-Identifier: Apache-2.0

package session

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pods"
)

// A network namespace held by a pod's sandbox is named by the pod.
func TestNetnsNamedByPod(t *testing.T) {
	const sandbox = "320983ce679b69a1fa11436cfe75780398955ba0c7487db46102f854b35ca69a"
	root := t.TempDir()
	dir := filepath.Join(root, "run/containerd/io.containerd.runtime.v2.task/k8s.io", sandbox)
	nsPath := filepath.Join(root, "var/run/netns/cni-1b2c3d4e")
	for _, d := range []string{dir, filepath.Dir(nsPath)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"web-0",` +
		`"io.kubernetes.cri.sandbox-namespace":"default"},"linux":{"namespaces":[{"type":"network","path":"/var/run/netns/cni-1b2c3d4e"}]}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nsPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	list := func() ([]netns.NS, error) {
		return []netns.NS{{Inode: 1, Name: "host"}, {Inode: ino, Name: "cni-1b2c3d4e"}, {Inode: ino + 1, Name: "pid:77 (sleep)"}}, nil
	}
	got, err := podNamed(list, pods.New(hostfs.New(root), nil, nil))()
	if err != nil || len(got) != 3 || got[0].Name != "host" || got[1].Name != "pod default/web-0" || got[2].Name != "pid:77 (sleep)" {
		t.Errorf("named %+v, %v", got, err)
	}
}
