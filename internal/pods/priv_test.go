// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// A config.json, or a link in its place, that a user other than root made names no pod: any
// local user who can write a state directory could plant one.
func TestPrivConfigOwnedByOther(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to give a file to another user; run `sudo make test`")
	}
	const nobody = 65534
	root := t.TempDir()
	good := `{"annotations":{"io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"default"}}`
	put := func(id string) string {
		p := filepath.Join(root, "state", id)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(p, "config.json")
	}
	owned := strings.Repeat("a", 64)
	if err := os.WriteFile(put(owned), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(put(owned), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "target.json")
	if err := os.WriteFile(target, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	link := strings.Repeat("b", 64)
	if err := os.Symlink(target, put(link)); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(put(link), nobody, nobody); err != nil {
		t.Fatal(err)
	}
	rootOwned := strings.Repeat("c", 64)
	if err := os.WriteFile(put(rootOwned), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	d := StateDir{RuntimeContainerd, "/state"}
	for _, id := range []string{owned, link} {
		if m, err := readConfig(hostfs.New(root), d, id); !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s: %+v, %v; want ErrUnsafe", id, m, err)
		}
	}
	if m, err := readConfig(hostfs.New(root), d, rootOwned); err != nil || m.PodName != "web-0" {
		t.Errorf("root's own file: %+v, %v", m, err)
	}
}
