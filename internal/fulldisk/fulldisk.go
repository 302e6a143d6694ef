// SPDX-License-Identifier: Apache-2.0

// Package fulldisk gives privileged tests a small filesystem that fills up and is freed
// again: a tmpfs of a few hundred KiB, and a filler file that takes its space until removed.
// It is how droptrace's behaviour on a full disk is tested for real, with write(2) failing
// with ENOSPC part way through a buffer.
package fulldisk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Disk is a mounted tmpfs.
type Disk struct {
	Dir    string
	filler string
}

// Mount mounts a tmpfs of size bytes on a new temporary directory. It is unmounted when the
// test ends, also when it fails. Needs root.
func Mount(t testing.TB, size int) *Disk {
	t.Helper()
	dir := t.TempDir() // removed after the unmount below: cleanups run last first
	if err := unix.Mount("droptrace-fulldisk", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount a %d-byte tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return &Disk{Dir: dir, filler: filepath.Join(dir, "filler")}
}

// Take writes a filler file of n bytes, or until the disk is full when n is 0.
func (d *Disk) Take(n int) error {
	f, err := os.OpenFile(d.filler, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for written := 0; n == 0 || written < n; written += len(chunk) {
		if n > 0 {
			chunk = chunk[:min(len(chunk), n-written)]
		}
		if _, err := f.Write(chunk); err != nil {
			if n == 0 && errors.Is(err, unix.ENOSPC) {
				return nil
			}
			return fmt.Errorf("fill %s: %w", d.Dir, err)
		}
	}
	return nil
}

// Free removes the filler file: its space returns.
func (d *Disk) Free() error {
	return os.Remove(d.filler)
}

// Available is the bytes the disk has free.
func (d *Disk) Available() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(d.Dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
