// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostfs"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"truncated", `{"annotations":{"io.kubernetes.pod.name":"x"`},
		{"not an object", `[1,2]`},
		{"annotations not strings", `{"annotations":{"io.kubernetes.pod.name":1}}`},
		{"empty", ``},
	} {
		if _, err := ParseConfig(strings.NewReader(tc.text)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", tc.name, err)
		}
	}
	m, err := ParseConfig(strings.NewReader(`{"annotations":{}}`))
	if err != nil || m != (Meta{}) {
		t.Errorf("no annotations: %+v, %v", m, err)
	}
	f, err := os.Open("testdata/root/run/containers/storage/overlay-containers/" + sb2 + "/userdata/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err = ParseConfig(f)
	want := Meta{PodName: "coredns-5d78c9869d-h7x2q", PodNamespace: "kube-system", PodUID: uid2, Sandbox: true, SandboxID: sb2,
		NetnsPath: "/var/run/netns/6e1f0a52-8c4d-4b3a-a9e7-1d2c3b4a5f60", OwnNetns: true}
	if err != nil || m != want {
		t.Errorf("CRI-O sandbox: %+v, %v; want %+v", m, err, want)
	}
}

func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile("testdata/root/run/containerd/io.containerd.runtime.v2.task/k8s.io/" + sb1 + "/config.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add(`{"annotations":{"io.kubernetes.pod.name":"a\u001b","io.kubernetes.pod.namespace":"b/c"}}`)
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseConfig(strings.NewReader(text))
		if err != nil {
			return
		}
		for _, s := range []string{m.PodName, m.PodNamespace, m.PodUID, m.Name, m.SandboxID} {
			if strings.ContainsAny(s, "/\n\x1b") || len(s) > 4*maxName {
				t.Errorf("%q gave the name %q", text, s)
			}
		}
	})
}

// A config.json that is a link, a FIFO, or too large is refused before it is parsed.
func TestUnsafeFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "state")
	put := func(id string) string {
		p := filepath.Join(dir, id)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(p, "config.json")
	}
	secret := filepath.Join(root, "secret.json")
	if err := os.WriteFile(secret, []byte(`{"annotations":{"io.kubernetes.pod.name":"stolen","io.kubernetes.pod.namespace":"x"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := strings.Repeat("1", 64)
	if err := os.Symlink(secret, put(link)); err != nil {
		t.Fatal(err)
	}
	dirLink := strings.Repeat("2", 64)
	if err := os.MkdirAll(filepath.Join(root, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "elsewhere", "config.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(dir, dirLink)); err != nil {
		t.Fatal(err)
	}
	fifo := strings.Repeat("3", 64)
	if err := unix.Mkfifo(put(fifo), 0o644); err != nil {
		t.Fatal(err)
	}
	huge := strings.Repeat("4", 64)
	big := `{"annotations":{"io.kubernetes.pod.name":"` + strings.Repeat("a", MaxConfigBytes) + `"}}`
	if err := os.WriteFile(put(huge), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	hard := strings.Repeat("5", 64)
	if err := os.Link(secret, put(hard)); err != nil {
		t.Fatal(err)
	}
	fsys := hostfs.New(root)
	d := StateDir{RuntimeContainerd, "/state"}
	for _, tc := range []struct {
		name, id string
		want     error
	}{
		{"symbolic link", link, ErrUnsafe},
		{"directory link", dirLink, ErrUnsafe},
		{"FIFO", fifo, ErrUnsafe},
		{"too large", huge, ErrTooLarge},
		{"hard link", hard, ErrUnsafe},
		{"missing", strings.Repeat("6", 64), os.ErrNotExist},
	} {
		if m, err := readConfig(fsys, d, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("%s: %+v, %v; want %v", tc.name, m, err, tc.want)
		}
	}
}

// The file is read through a reader bounded by MaxConfigBytes, whatever its size said.
func TestParseConfigBounded(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"annotations":{"a":"`), strings.NewReader(strings.Repeat("b", 2*MaxConfigBytes)))
	if _, err := ParseConfig(r); !errors.Is(err, ErrMalformed) {
		t.Errorf("an endless string: %v", err)
	}
}

// A pid file is read as carefully as a config.json, and must hold a pid.
func TestReadPid(t *testing.T) {
	root := t.TempDir()
	d := StateDir{RuntimeCRIO, "/"}
	put := func(id, text string) {
		t.Helper()
		p := filepath.Join(root, id, "userdata")
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "pidfile"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good, bad, neg, link := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), strings.Repeat("d", 64)
	put(good, "4300\n")
	put(bad, "not a pid")
	put(neg, "-1")
	if err := os.MkdirAll(filepath.Join(root, link, "userdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, good, "userdata", "pidfile"), filepath.Join(root, link, "userdata", "pidfile")); err != nil {
		t.Fatal(err)
	}
	if pid, err := readPid(hostfs.New(root), d, good); pid != 4300 || err != nil {
		t.Errorf("pid %d, %v; want 4300", pid, err)
	}
	for id, want := range map[string]error{bad: ErrMalformed, neg: ErrMalformed, link: ErrUnsafe} {
		if pid, err := readPid(hostfs.New(root), d, id); !errors.Is(err, want) {
			t.Errorf("%s: %d, %v; want %v", id[:1], pid, err, want)
		}
	}
}
