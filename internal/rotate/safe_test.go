// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to own fixtures as root and as another uid; run make test as root")
	}
}

// victim is a root-owned file outside the output directory, as /etc/shadow would be.
func victim(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "victim")
	content := []byte("root's data\n")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, content
}

// userDir is a directory another user (nobody) can write, where they plant things.
func userDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	return dir
}

func unchanged(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %q, %v; want it unchanged: %q", path, got, err, want)
	}
}

// A link planted in place of the output, a file of another user and a second name of a root
// file are refused with ErrUnsafe, with and without rotation, and nothing is written.
func TestPrivCreateRefusesPlantedFiles(t *testing.T) {
	needRoot(t)
	for _, plant := range []string{"symlink", "other-owner", "hardlink"} {
		for _, rotating := range []bool{false, true} {
			target, content := victim(t)
			out := filepath.Join(userDir(t), "out.jsonl")
			switch plant {
			case "symlink":
				if err := os.Symlink(target, out); err != nil {
					t.Fatal(err)
				}
			case "other-owner":
				target = out
				if err := os.WriteFile(out, content, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(out, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			case "hardlink":
				target = filepath.Join(filepath.Dir(out), "victim")
				if err := os.WriteFile(target, content, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Link(target, out); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if rotating {
				var w *Writer
				if w, err = Open(out, 100, 3); err == nil {
					w.Write([]byte("{}\n"))
					w.Close()
				}
			} else {
				var f *os.File
				if f, err = Create(out); err == nil {
					f.Write([]byte("{}\n"))
					f.Close()
				}
			}
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("%s, rotating %v: err %v; want ErrUnsafe", plant, rotating, err)
			}
			unchanged(t, target, content)
			if _, err := os.Lstat(out + ".1"); err == nil {
				t.Errorf("%s, rotating %v: the refused file was rotated", plant, rotating)
			}
		}
	}
}

// A new file is 0600 whatever the umask; an existing file of root's is emptied and reused.
func TestCreateModeAndTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	for range 2 {
		f, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("x\n")
		f.Close()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || st.Size() != 2 {
			t.Errorf("%s: mode %v size %d; want 0600 and 2 bytes", path, st.Mode(), st.Size())
		}
	}
	if _, err := Create(filepath.Join(path, "x")); err == nil {
		t.Error("a file as directory: no error")
	}
}

// A directory that is a link is refused: the last component of the directory is where a
// user who owns its parent could redirect the whole output.
func TestCreateRefusesLinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(filepath.Join(dir, "d", "out.jsonl")); !errors.Is(err, ErrUnsafe) {
		t.Errorf("linked directory: %v; want ErrUnsafe", err)
	}
}

// Links planted at the rotated names FILE.1 and FILE.2 while droptrace runs are replaced or
// moved by the renames, never written through; the rotated files are droptrace's own, 0600.
func TestPrivRotationThroughPlantedLinks(t *testing.T) {
	needRoot(t)
	target, content := victim(t)
	out := filepath.Join(userDir(t), "out.jsonl")
	w, err := Open(out, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".1", ".2"} {
		if err := os.Symlink(target, out+n); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range []string{"first line\n", "second line\n", "third line\n"} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	unchanged(t, target, content)
	for n, want := range map[string]string{"": "third line\n", ".1": "second line\n", ".2": "first line\n"} {
		st, err := os.Lstat(out + n)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v; want a regular file of mode 0600", out+n, st, err)
			continue
		}
		unchanged(t, out+n, []byte(want))
	}
}

// A non-rotated output may be a character device or a FIFO of root's (--output /dev/null); a
// rotated one may not, since rotating renames what is there.
func TestPrivDevicesOnlyWhenNotRotated(t *testing.T) {
	needRoot(t)
	f, err := Create(os.DevNull)
	if err != nil {
		t.Fatalf("Create(%s): %v", os.DevNull, err)
	}
	f.Close()
	fifo := filepath.Join(t.TempDir(), "out.jsonl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fifo, 100, 2); !errors.Is(err, ErrUnsafe) {
		t.Errorf("rotated FIFO: %v; want ErrUnsafe", err)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s after a refused Open: %v %v; want the FIFO left in place", fifo, st, err)
	}
}

// Under sudo, a file of the user who ran sudo is theirs to overwrite, and is written.
func TestPrivCreateAcceptsSudoUsersFile(t *testing.T) {
	needRoot(t)
	path := filepath.Join(t.TempDir(), "out.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUDO_UID", "")
	if _, err := Create(path); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("nobody's file as root: %v; want ErrUnsafe", err)
	}
	t.Setenv("SUDO_UID", "65534")
	f, err := Create(path)
	if err != nil {
		t.Fatalf("nobody's file under sudo by nobody: %v", err)
	}
	f.Close()
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Errorf("%s: %v %v; want it emptied", path, st, err)
	}
}
