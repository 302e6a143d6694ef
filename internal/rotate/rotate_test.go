// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// files reads the rotated set of path, oldest first; it must hold at most keep old files.
func files(t *testing.T, path string, keep int) [][]byte {
	t.Helper()
	names, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > keep+1 {
		t.Errorf("%d files %q: more than %d old files kept", len(names), names, keep)
	}
	var out [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// openTemp opens out.jsonl in a new temporary directory.
func openTemp(t *testing.T, maxSize int64, keep int) (string, *Writer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := Open(path, maxSize, keep)
	if err != nil {
		t.Fatal(err)
	}
	return path, w
}

// lines of varied lengths, numbered so that order and loss show.
func testLines(n int, r *rand.Rand) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf(`{"n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", r.IntN(300))))
	}
	return out
}

// Lines reach the writer in arbitrary pieces, as from a bufio.Writer flushing mid-line:
// every file still holds whole lines only, in order, none lost while within keep, and no file
// grows past the limit.
func TestRotationNeverSplitsALine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const maxSize, keep = 2000, 1000 // keep everything, to see every line
	path, w := openTemp(t, maxSize, keep)
	lines := testLines(500, r)
	all := []byte(strings.Join(lines, ""))
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 1+r.IntN(700))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("write: %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fs := files(t, path, keep)
	if len(fs) < 10 {
		t.Fatalf("%d files from %d bytes at max %d", len(fs), len(all), maxSize)
	}
	var joined []byte
	for i, b := range fs {
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("file %d does not end with a whole line: %q", i, b[max(0, len(b)-40):])
		}
		if len(b) > maxSize {
			t.Errorf("file %d has %d bytes, more than %d", i, len(b), maxSize)
		}
		for _, l := range bytes.SplitAfter(b, []byte("\n")) {
			if len(l) > 0 && !bytes.HasPrefix(l, []byte(`{"n":`)) {
				t.Errorf("file %d has a split line %q", i, l)
			}
		}
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, all) {
		t.Errorf("the files together differ from what was written (%d vs %d bytes)", len(joined), len(all))
	}
}

// Old files are kept up to keep; the newest data is in path, then path.1, ...
func TestKeepsAtMostKeepOldFiles(t *testing.T) {
	for _, keep := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			path, w := openTemp(t, 100, keep)
			for i := range 50 {
				fmt.Fprintf(w, "line %02d %s\n", i, strings.Repeat("y", 30)) // 40 bytes: two per file
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			fs := files(t, path, keep)
			if len(fs) != keep+1 {
				t.Fatalf("%d files, want %d", len(fs), keep+1)
			}
			// The newest file has the last two lines; each older one the two before.
			for i, b := range fs {
				first := 48 - 2*(len(fs)-1-i)
				want := fmt.Sprintf("line %02d %s\nline %02d %s\n", first, strings.Repeat("y", 30), first+1, strings.Repeat("y", 30))
				if string(b) != want {
					t.Errorf("file %d of %d = %q, want %q", i, len(fs), b, want)
				}
			}
		})
	}
}

// A line longer than the limit gets a file of its own rather than being split or lost.
func TestLongLineGetsItsOwnFile(t *testing.T) {
	path, w := openTemp(t, 10, 5)
	long := strings.Repeat("z", 50) + "\n"
	for _, s := range []string{"a\n", long, "b\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got := files(t, path, 5)
	want := []string{"a\n", long, "b\n"}
	if len(got) != len(want) {
		t.Fatalf("%d files %q, want %q", len(got), got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("file %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// Each file opened by a rotation starts with the header; the first file does not get it twice.
func TestHeaderStartsEveryRotatedFile(t *testing.T) {
	path, w := openTemp(t, 30, 10)
	fmt.Fprint(w, "HEAD\n")
	w.SetHeader([]byte("HEAD\n"))
	for i := range 6 {
		fmt.Fprintf(w, "line %d ..........\n", i) // 18 bytes: one per file with the header
	}
	w.Close()
	fs := files(t, path, 10)
	if len(fs) != 6 {
		t.Fatalf("%d files: %q", len(fs), fs)
	}
	for i, b := range fs {
		if !bytes.HasPrefix(b, []byte("HEAD\n")) || bytes.Count(b, []byte("HEAD\n")) != 1 {
			t.Errorf("file %d = %q: want one header at the top", i, b)
		}
		if len(b) > 30 {
			t.Errorf("file %d has %d bytes", i, len(b))
		}
	}
}

// Opening over an existing file keeps it as path.1 (a restarted daemon loses nothing); an
// empty file is reused.
func TestOpenRotatesAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(path, []byte("previous run\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "this run\n")
	w.Close()
	if b, _ := os.ReadFile(path + ".1"); string(b) != "previous run\n" {
		t.Errorf("%s.1 = %q", path, b)
	}
	if b, _ := os.ReadFile(path); string(b) != "this run\n" {
		t.Errorf("%s = %q", path, b)
	}

	// Without a size limit nothing rotates while running.
	w, err = Open(path, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		fmt.Fprint(w, "more\n")
	}
	w.Close()
	if fs := files(t, path, 2); len(fs) != 3 || len(fs[2]) != 5000 || string(fs[0]) != "previous run\n" {
		t.Errorf("files %d, newest %d bytes", len(fs), len(fs[len(fs)-1]))
	}
}

// A partial line is written at Close rather than lost.
func TestCloseWritesAPartialLine(t *testing.T) {
	path, w := openTemp(t, 100, 1)
	fmt.Fprint(w, "whole\nhalf")
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "whole\nhalf" {
		t.Errorf("after Sync: %q", b)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x\n")); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		exist []string // besides the directory "sub"
		want  []string
	}{
		{name: "none", want: []string{}},
		{name: "only the current file", exist: []string{"out.jsonl"}, want: []string{"out.jsonl"}},
		{
			name:  "oldest first, numbers compared as numbers",
			exist: []string{"out.jsonl", "out.jsonl.1", "out.jsonl.2", "out.jsonl.10", "out.jsonl.9"},
			want:  []string{"out.jsonl.10", "out.jsonl.9", "out.jsonl.2", "out.jsonl.1", "out.jsonl"},
		},
		{
			name:  "gaps and a missing current file",
			exist: []string{"out.jsonl.1", "out.jsonl.3"},
			want:  []string{"out.jsonl.3", "out.jsonl.1"},
		},
		{
			name: "names the writer does not make are not listed",
			exist: []string{"out.jsonl", "out.jsonl.0", "out.jsonl.01", "out.jsonl.x", "out.jsonl.1.gz",
				"out.jsonl.-1", "out.jsonl.", "other.jsonl.1", "out.jsonl2"},
			want: []string{"out.jsonl"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "out.jsonl.4"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.exist {
				if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Files(filepath.Join(dir, "out.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]string, len(tc.want))
			for i, n := range tc.want {
				want[i] = filepath.Join(dir, n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Files = %q, want %q", got, want)
			}
		})
	}
	if _, err := Files(filepath.Join(t.TempDir(), "missing", "out.jsonl")); err == nil {
		t.Error("Files in a missing directory: no error")
	}
}

// Files lists what a Writer leaves, in the order it was written.
func TestFilesFollowTheWriter(t *testing.T) {
	path, w := openTemp(t, 10, 3)
	for i := range 12 {
		fmt.Fprintf(w, "line %02d\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	want := []string{"line 08\n", "line 09\n", "line 10\n", "line 11\n"}
	if !slices.Equal(got, want) {
		t.Errorf("contents oldest first = %q, want %q", got, want)
	}
}

// A rotation that fails (here FILE.1 is a directory, which the shift cannot remove) costs
// the line being written, not the writes after it: once the obstacle is gone the next line
// finishes the rotation.
func TestFailedRotationIsRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	w, err := Open(path, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetHeader([]byte("header\n"))
	if err := os.MkdirAll(path+".1/blocker", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(w, "%-40s\n", "first"); err != nil {
		t.Fatal(err)
	}
	if n, err := fmt.Fprintf(w, "%-40s\n", "lost"); err == nil || n != 0 {
		t.Fatalf("write needing a blocked rotation: %d, %v; want 0 bytes and an error", n, err)
	}
	if err := os.RemoveAll(path + ".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(w, "%-40s\n", "after"); err != nil {
		t.Fatalf("write after the obstacle went: %v", err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if want := fmt.Sprintf("%-40s\n", "first"); string(old) != want {
		t.Errorf("%s.1 = %q, want %q", path, old, want)
	}
	if want := fmt.Sprintf("header\n%-40s\n", "after"); string(cur) != want {
		t.Errorf("%s = %q, want %q", path, cur, want)
	}
}
