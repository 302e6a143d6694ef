// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// CleanupStale removes what labs named with prefix left behind when their process was killed
// before Close: their namespaces (and with them the veths and RPS settings), lock files, and any
// journaled sysctl change not yet restored. Labs whose process still runs are left alone.
func CleanupStale(prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	var errs []error
	names := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `(?:tx|rx)-([0-9a-f]{8})$`)
	ids := map[string]bool{}
	if ents, err := os.ReadDir(netns.RunDir); err == nil {
		for _, e := range ents {
			if m := names.FindStringSubmatch(e.Name()); m != nil {
				ids[m[1]] = true
			}
		}
	}
	if ents, err := os.ReadDir(StateDir); err == nil {
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), "lab-"+prefix); ok {
				if id, ok := strings.CutSuffix(id, ".lock"); ok && len(id) == 8 {
					ids[id] = true
				}
			}
		}
	}
	for id := range ids {
		if err := cleanupLab(prefix, id); err != nil {
			errs = append(errs, err)
		}
	}
	// A lock file a process was killed before naming; unlocked means its owner is gone.
	tmps, _ := filepath.Glob(filepath.Join(StateDir, ".lab-*"))
	for _, p := range tmps {
		if f, err := os.Open(p); err == nil {
			if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
				os.Remove(p)
			}
			f.Close()
		}
	}
	if err := sysctl.RestoreStale(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanupLab removes one lab's leftovers if no live process holds its lock.
func cleanupLab(prefix, id string) error {
	lockPath := labLockPath(prefix, id)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil // alive
		}
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	var errs []error
	for _, ns := range []string{prefix + "tx-" + id, prefix + "rx-" + id} {
		if _, err := os.Stat(filepath.Join(netns.RunDir, ns)); err == nil {
			if err := ip("netns", "del", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(lockPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
