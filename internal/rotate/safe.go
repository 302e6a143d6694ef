// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrUnsafe is returned when an output path names something droptrace, running as root, must
// not write: a symbolic link, a file that is not regular, a file owned by another user or one
// with more than one name. Any local user who can write the directory could have planted it to
// make root overwrite a file of their choosing.
var ErrUnsafe = errors.New("unsafe output file")

// Dir is the directory of an output file, held open so that every later open, rename and
// removal in it is made relative to the same directory, never by a path that could be
// redirected in between. The directory itself is opened without following a link at its
// last component.
type Dir struct {
	fd   int
	path string
}

// OpenDir opens the directory that holds path.
func OpenDir(path string) (*Dir, error) {
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("refuse %s: its directory %s is a symbolic link or not a directory (want a real directory; give its resolved path): %w", path, dir, ErrUnsafe)
		}
		return nil, fmt.Errorf("open directory of %s: %w", path, &os.PathError{Op: "open", Path: dir, Err: err})
	}
	return &Dir{fd: fd, path: dir}, nil
}

// Close closes the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

// check says whether the existing entry name may be written: a regular file with one name,
// owned by root or by the user running droptrace; with devices, also a character device or a
// FIFO of theirs (--output /dev/null, a pipe to a collector), which no other user can plant.
func (d *Dir) check(name string, st *unix.Stat_t, devices bool) error {
	what := ""
	typ := st.Mode & unix.S_IFMT
	switch {
	case typ == unix.S_IFLNK:
		what = "is a symbolic link"
	case devices && (typ == unix.S_IFCHR || typ == unix.S_IFIFO):
		if !trustedOwner(st.Uid) {
			what = fmt.Sprintf("is owned by uid %d", st.Uid)
		}
	case typ != unix.S_IFREG:
		what = "is not a regular file"
	case !trustedOwner(st.Uid):
		what = fmt.Sprintf("is owned by uid %d", st.Uid)
	case st.Nlink > 1:
		what = fmt.Sprintf("has %d hard links", st.Nlink)
	}
	if what == "" {
		return nil
	}
	want := "root"
	if uid, ok := invoker(); ok {
		want = fmt.Sprintf("root or uid %d", uid)
	}
	return fmt.Errorf("refuse %s: %s (want a regular file owned by %s, or no file): %w", d.join(name), what, want, ErrUnsafe)
}

// trustedOwner says whether a file of uid may be written: root's, or that of the user who ran
// droptrace, whose own files are theirs to overwrite.
func trustedOwner(uid uint32) bool {
	inv, ok := invoker()
	return uid == 0 || (ok && uint32(inv) == uid)
}

// invoker is the user who ran droptrace when that is not root: the real uid, or under sudo the
// SUDO_UID that sudo sets (only root could have set it otherwise).
func invoker() (int, bool) {
	if uid := os.Getuid(); uid != 0 {
		return uid, true
	}
	if uid, err := strconv.Atoi(os.Getenv("SUDO_UID")); err == nil && uid > 0 {
		return uid, true
	}
	return 0, false
}

// lstat is name's state without following a link; ok is false when name does not exist.
func (d *Dir) lstat(name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, &os.PathError{Op: "stat", Path: d.join(name), Err: err}
	}
	return st, true, nil
}

// Check refuses an existing name that Create would refuse; a name that does not exist passes.
func (d *Dir) Check(name string) error {
	st, ok, err := d.lstat(name)
	if err != nil || !ok {
		return err
	}
	return d.check(name, &st, false)
}

// Create opens name for writing, emptied: a new file is created with mode 0600 (recordings
// name other users' peers and processes); an existing one must be a regular file that passes
// the checks above. A link is never followed, also when one is planted between the checks
// and the open.
func (d *Dir) Create(name string) (*os.File, error) {
	return d.create(name, false)
}

func (d *Dir) create(name string, devices bool) (*os.File, error) {
	for range 5 { // only a name that keeps appearing and vanishing needs more than two
		fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			// The umask could only narrow 0600; make it exact so a later chmod is never needed.
			if err := unix.Fchmod(fd, 0o600); err != nil {
				unix.Close(fd)
				return nil, &os.PathError{Op: "chmod", Path: d.join(name), Err: err}
			}
			return os.NewFile(uintptr(fd), d.join(name)), nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, &os.PathError{Op: "create", Path: d.join(name), Err: err}
		}
		// Check before opening: opening a device or a FIFO can have effects of its own.
		st, ok, err := d.lstat(name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if err := d.check(name, &st, devices); err != nil {
			return nil, err
		}
		fd, err = unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if errors.Is(err, unix.ELOOP) {
			return nil, d.check(name, &unix.Stat_t{Mode: unix.S_IFLNK}, devices)
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: d.join(name), Err: err}
		}
		// What was opened must be what was checked, not something swapped in between.
		var got unix.Stat_t
		if err := unix.Fstat(fd, &got); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "stat", Path: d.join(name), Err: err}
		}
		if err := d.check(name, &got, devices); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if got.Dev != st.Dev || got.Ino != st.Ino {
			unix.Close(fd)
			continue
		}
		if got.Mode&unix.S_IFMT != unix.S_IFREG {
			// A device or a FIFO is written as it is: it cannot be emptied.
		} else if err := unix.Ftruncate(fd, 0); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "truncate", Path: d.join(name), Err: err}
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			unix.Close(fd)
			return nil, &os.PathError{Op: "open", Path: d.join(name), Err: err}
		}
		return os.NewFile(uintptr(fd), d.join(name)), nil
	}
	return nil, fmt.Errorf("create %s: it keeps being replaced: %w", d.join(name), ErrUnsafe)
}

// Remove removes name; a link is removed itself, never its target. A name that does not
// exist is not an error.
func (d *Dir) Remove(name string) error {
	err := unix.Unlinkat(d.fd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return &os.PathError{Op: "remove", Path: d.join(name), Err: err}
}

// rename renames from to to within the directory; neither is followed if it is a link, and
// a link at to is replaced, never written through. A from that does not exist is not an error.
func (d *Dir) rename(from, to string) error {
	err := unix.Renameat(d.fd, from, d.fd, to)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return &os.LinkError{Op: "rename", Old: d.join(from), New: d.join(to), Err: err}
}

// Create opens path for writing as droptrace opens an output file that is not rotated: as
// Dir.Create, and an existing character device or FIFO of root's (or of the user running
// droptrace) is written too.
func Create(path string) (*os.File, error) {
	d, err := OpenDir(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.create(filepath.Base(path), true)
}
