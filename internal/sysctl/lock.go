// SPDX-License-Identifier: Apache-2.0

package sysctl

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// LockDir holds the host-wide sysctl lock, and the lock files of the test labs that take it. It
// is on tmpfs: a reboot, which also resets sysctls, empties it.
const LockDir = "/run/droptrace-netlab"

// LockPath is the host-wide sysctl lock, held by whoever has changed global sysctls for a while
// (a test, a lab); the file is also the journal of the values to restore.
const LockPath = LockDir + "/sysctl.lock"

// ErrBusy means a live holder has the sysctl lock: it has changed sysctls and not restored them.
var ErrBusy = errors.New("another process has changed sysctls")

// lockFile takes the lock at path, retrying until wait has passed. The file is opened for
// appending, so journal lines written through it always land at its end.
func lockFile(path string, wait time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sysctl lock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w: %s held for over %s", ErrBusy, path, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
