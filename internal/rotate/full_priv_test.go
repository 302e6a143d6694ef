// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/droptrace/droptrace/internal/fulldisk"
)

// On a full filesystem a line is written whole or not at all: a short write is truncated
// back, the Writer is not stuck on the error, and writes resume when space returns.
func TestPrivFullDiskWritesWholeLines(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to mount a tmpfs; run make test as root")
	}
	disk := fulldisk.Mount(t, 128<<10)
	path := filepath.Join(disk.Dir, "out.jsonl")
	w, err := Open(path, 16<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetHeader([]byte("header\n"))
	line := func(i int) []byte { return fmt.Appendf(nil, "%-98d\n", i) } // 99 bytes: lines straddle pages
	var want []string
	write := func(i int) error {
		n, err := w.Write(line(i))
		if err == nil {
			want = append(want, string(line(i)))
		} else if n != 0 {
			t.Fatalf("line %d: failed write reports %d bytes written", i, n)
		}
		return err
	}
	if err := write(0); err != nil {
		t.Fatal(err)
	}
	if err := disk.Take(0); err != nil { // only the rest of the output's page is left
		t.Fatal(err)
	}
	failed := 0
	for i := 1; i <= 100; i++ {
		if err := write(i); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("line %d: %v, want ENOSPC", i, err)
			}
			failed++
		}
	}
	if failed == 0 || failed == 100 {
		t.Fatalf("%d of 100 writes failed on a full disk, want some after the page filled", failed)
	}
	checkLines(t, path, want)

	if err := disk.Free(); err != nil {
		t.Fatal(err)
	}
	for i := 101; i <= 300; i++ { // past 16 KiB: a rotation too
		if err := write(i); err != nil {
			t.Fatalf("line %d after space returned: %v", i, err)
		}
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(cur, []byte("header\n")) {
		t.Errorf("the file after rotation does not start with the header: %.20q", cur)
	}
	got := strings.Join(want, "")
	if all := string(old) + strings.TrimPrefix(string(cur), "header\n"); all != got {
		t.Errorf("files hold %d bytes, want the %d of the lines written", len(all), len(got))
	}
}

// checkLines fails unless path holds exactly the lines want.
func checkLines(t *testing.T, path string, want []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != strings.Join(want, "") {
		t.Fatalf("%s holds %d bytes ending %q, want the %d whole lines written", path, len(b), b[max(0, len(b)-20):], len(want))
	}
}
