// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// The containers of testdata/root: layouts of containerd and CRI-O under both cgroup drivers.
const (
	sb1 = "320983ce679b69a1fa11436cfe75780398955ba0c7487db46102f854b35ca69a"
	c2  = "9c0abe51c6e6655d81de2d044d4fb194931f058c0426c67c7285d8f5657ed64a"
	sb2 = "e39e61423ee6eba5859a37f14e4c397bd6826d26d04c4c397df5c6638e13695b"
	c3  = "7c1c97df17c066924822b0af09a65251554962c61e23329aed04cd19020dc3b8"
	c4  = "0012a3fa000c5dc26ee658c3c58e12cecd58d6455cec3d5621f0c787675b38aa"
	c5  = "d0bf3e6ee1d668de18c9ca200a4f152062f345283ee68cadfe41204f215d75e9"
	c6  = "6db53c9d5a2ca72a85ddf3a681c0d9567899f4c48632a2e9b0beeba0d6938485"
	c7  = "f28d5b0d6f8be0da8446dabe79044cb9ed0ffa3150a003936155409fe778b885"
	c8  = "7ed6a8377b92b49472195f1201af304341daf4abb3643f837eafb38066111f6d"

	uid2 = "0b8e4f2d-6a31-4c7b-9e15-2f4d6c8a0b13"
	uid6 = "99999999-0000-4000-8000-000000000001"
)

func fixtureResolver(t *testing.T) (*Resolver, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	return New(hostfs.New("testdata/root"), nil, slog.New(slog.NewTextHandler(&logs, nil))), &logs
}

func TestProcess(t *testing.T) {
	r, logs := fixtureResolver(t)
	for _, tc := range []struct {
		name string
		pid  int
		want Container
	}{
		{"containerd, systemd driver, v2", 4121, Container{ID: cid, Runtime: RuntimeContainerd, Name: "app",
			PodName: "web-0", Namespace: "default", PodUID: uid, QoS: QoSBurstable}},
		{"containerd sandbox", 4100, Container{ID: sb1, Runtime: RuntimeContainerd, PodName: "web-0",
			Namespace: "default", PodUID: uid, QoS: QoSBurstable, Sandbox: true}},
		{"CRI-O, systemd driver, v1, graph root", 5213, Container{ID: c2, Runtime: RuntimeCRIO, Name: "coredns",
			PodName: "coredns-5d78c9869d-h7x2q", Namespace: "kube-system", PodUID: uid2, QoS: QoSGuaranteed}},
		{"CRI-O conmon", 5190, Container{PodUID: uid2, QoS: QoSGuaranteed}},
		{"containerd, cgroupfs driver, v1 on a hybrid host", 6012, Container{ID: c3, Runtime: RuntimeContainerd,
			Name: "node-exporter", PodName: "node-exporter-x7k2p", Namespace: "monitoring",
			PodUID: "c4d9e1f3-2a5b-4e6c-8d7f-9a0b1c2d3e4f", QoS: QoSBestEffort}},
		{"containerd, cgroupfs driver, v2", 7004, Container{ID: c4, Runtime: RuntimeContainerd, Name: "haproxy",
			PodName: "ingress-7c9f8-lb2kq", Namespace: "ingress", PodUID: "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", QoS: QoSGuaranteed}},
		{"cri-dockerd: the cgroup only", 8000, Container{ID: c5, Runtime: RuntimeDocker,
			PodUID: "11223344-5566-4788-99aa-bbccddeeff00", QoS: QoSBestEffort}},
	} {
		got, ok := r.Process(tc.pid, "")
		if !ok || got != tc.want {
			t.Errorf("%s: pid %d is %+v, %v; want %+v", tc.name, tc.pid, got, ok, tc.want)
		}
	}
	if got, ok := r.Process(900, ""); ok {
		t.Errorf("a system service is named %+v", got)
	}
	// A process gone since its cgroup was read is named from that path.
	if got, ok := r.Process(99999, "/kubepods/pod"+uid+"/"+cid); !ok || got.Name != "app" || got.Pod() != "default/web-0" {
		t.Errorf("from the path alone: %+v, %v", got, ok)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %s", logs.String())
	}
	if got := (*Resolver)(nil); got != nil {
		t.Fatal("unreachable")
	} else if _, ok := got.Process(4121, ""); ok {
		t.Error("a nil Resolver named a container")
	}
}

// A config.json is read once per container, however often its processes are asked about.
func TestProcessCached(t *testing.T) {
	r, _ := fixtureResolver(t)
	for range 100 {
		r.Process(4121, "")
		r.Process(6012, "")
	}
	// pid 4121's is in containerd's directory, read first; pid 6012's cgroup does not say
	// the runtime, and containerd's directory is first too.
	if s := r.Stats(); s.Reads != 2 || s.Errors != 0 || s.Evicted != 0 {
		t.Errorf("stats %+v, want 2 reads", s)
	}
}

// Past MaxContainers the cache starts again, and says how many it dropped; a container that
// could not be named is tried again only after retryMissing.
func TestCacheBounded(t *testing.T) {
	r, logs := fixtureResolver(t)
	now := time.Unix(1e9, 0)
	r.now = func() time.Time { return now }
	for i := range MaxContainers + 10 {
		id := strings.Repeat("0", 56) + strings.Repeat("f", 8)
		id = id[:56] + hex8(i)
		r.lookup(id, "")
	}
	s := r.Stats()
	if len(r.cache) > MaxContainers || s.Evicted != MaxContainers {
		t.Errorf("%d cached, stats %+v; want at most %d cached, %d evicted", len(r.cache), s, MaxContainers, MaxContainers)
	}
	if !strings.Contains(logs.String(), "container cache full") {
		t.Errorf("the cache started again silently: %q", logs.String())
	}
	reads := s.Reads
	r.lookup(strings.Repeat("0", 56)+hex8(MaxContainers+5), "")
	if r.Stats().Reads != reads {
		t.Error("a missing container was looked for again at once")
	}
	now = now.Add(retryMissing)
	r.lookup(strings.Repeat("0", 56)+hex8(MaxContainers+5), "")
	if r.Stats().Reads == reads {
		t.Error("a missing container was never looked for again")
	}
}

func hex8(i int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for k := 7; k >= 0; k-- {
		b[k] = digits[i&15]
		i >>= 4
	}
	return string(b)
}

// A network namespace is named by the pod whose sandbox's config.json gives its path.
func TestNetns(t *testing.T) {
	r, _ := fixtureResolver(t)
	for _, tc := range []struct {
		path string
		want Container
	}{
		{"var/run/netns/cni-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901", Container{ID: sb1, Runtime: RuntimeContainerd,
			PodName: "web-0", Namespace: "default", PodUID: uid, Sandbox: true}},
		{"var/run/netns/6e1f0a52-8c4d-4b3a-a9e7-1d2c3b4a5f60", Container{ID: sb2, Runtime: RuntimeCRIO,
			PodName: "coredns-5d78c9869d-h7x2q", Namespace: "kube-system", PodUID: uid2, Sandbox: true}},
		// no path in the config: the sandbox's first process's namespace
		{"proc/4300/ns/net", Container{ID: "e510827d7c3bf4ed30edbc261706fd7426ce058425ded15671c1acc44058701f",
			Runtime: RuntimeContainerd, PodName: "legacy-0", Namespace: "batch", PodUID: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", Sandbox: true}},
	} {
		got, ok := r.Netns(inode(t, filepath.Join("testdata/root", tc.path)))
		if !ok || got != tc.want {
			t.Errorf("netns of %s: %+v, %v; want %+v", tc.path, got, ok, tc.want)
		}
	}
	// A hostNetwork pod's sandbox has no namespace of its own: the host's is not the pod's.
	if got, ok := New(hostfs.New("testdata/root"), nil, nil).Netns(inode(t, "testdata/root/proc/4400/ns/net")); ok {
		t.Errorf("a hostNetwork pod names the namespace of its pid: %+v", got)
	}
	reads := r.Stats().Reads
	if got, ok := r.Netns(inode(t, "testdata/root/proc/900/cgroup")); ok {
		t.Errorf("an unknown inode is named %+v", got)
	}
	if r.Stats().Reads != reads {
		t.Error("an unknown namespace made the state directories be read again at once")
	}
}

// --netns with a pod name finds its sandbox's namespace; a hostNetwork pod and an unknown pod
// have none.
func TestPodNetns(t *testing.T) {
	r, _ := fixtureResolver(t)
	want := inode(t, "testdata/root/var/run/netns/cni-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901")
	if got, ok := r.PodNetns("default/web-0"); !ok || got != want {
		t.Errorf("PodNetns(default/web-0) = %d, %v; want %d", got, ok, want)
	}
	if got, ok := r.PodNetns("batch/legacy-0"); !ok || got != inode(t, "testdata/root/proc/4300/ns/net") {
		t.Errorf("PodNetns(batch/legacy-0) = %d, %v; want its sandbox process's namespace", got, ok)
	}
	for _, name := range []string{"default/nope", "web-0", ""} {
		if got, ok := r.PodNetns(name); ok {
			t.Errorf("PodNetns(%q) = %d, want none", name, got)
		}
	}
}

// A namespace that is gone no longer names its pod, though a new one may get its inode.
func TestNetnsGone(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state", sb1)
	ns := filepath.Join(root, "netns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"web-0",` +
		`"io.kubernetes.cri.sandbox-namespace":"default"},"linux":{"namespaces":[{"type":"network","path":"/netns"}]}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ns, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(hostfs.New(root), []StateDir{{RuntimeContainerd, "/state"}}, nil)
	ino := inode(t, ns)
	if c, ok := r.Netns(ino); !ok || c.Pod() != "default/web-0" {
		t.Fatalf("netns %d: %+v, %v", ino, c, ok)
	}
	if err := os.Remove(ns); err != nil {
		t.Fatal(err)
	}
	if c, ok := r.Netns(ino); ok {
		t.Errorf("a namespace gone is still named %+v", c)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Names written by others: malformed files name nothing and say why once; escape characters
// are escaped; a config.json naming another pod than its cgroup's is not believed.
func TestHostileConfigs(t *testing.T) {
	r, logs := fixtureResolver(t)
	got, ok := r.Process(9006, "")
	if !ok || got.Pod() != "" || got.PodUID != uid6 || got.ID != c6 {
		t.Errorf("malformed config.json: %+v, %v; want the cgroup's pod UID only", got, ok)
	}
	if !strings.Contains(logs.String(), c6) || !strings.Contains(logs.String(), ErrMalformed.Error()) {
		t.Errorf("the malformed file is not logged: %s", logs.String())
	}
	r.Process(9006, "")
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d log lines for one bad file", n)
	}
	got, _ = r.Process(9007, "")
	if got.Pod() != `de\x2ffault/web\x1b[2J\x1b[31m-0` || got.Name != `app\x0aFAKE verdict` {
		t.Errorf("escape characters: pod %q container %q", got.Pod(), got.Name)
	}
	got, _ = r.Process(9008, "")
	if got.Pod() != "" || got.Name != "" || got.PodUID != uid6 {
		t.Errorf("a config.json of another pod's UID was believed: %+v", got)
	}
}

// A state directory with more than MaxContainers entries is looked at up to the bound, and
// says so.
func TestNetnsScanBounded(t *testing.T) {
	root := t.TempDir()
	for i := range MaxContainers + 1 {
		if err := os.Mkdir(filepath.Join(root, strings.Repeat("0", 56)+hex8(i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	r := New(hostfs.New(root), []StateDir{{RuntimeContainerd, "/"}}, slog.New(slog.NewTextHandler(&logs, nil)))
	r.Netns(1)
	if got := r.Stats().Reads; got != MaxContainers {
		t.Errorf("%d config.json looked for, want %d", got, MaxContainers)
	}
	if !strings.Contains(logs.String(), "looked_at=4096") {
		t.Errorf("the bound was met silently: %q", logs.String())
	}
}
