// SPDX-License-Identifier: Apache-2.0

// Package netlab builds the hidden-loss scenario for privileged tests and benchmarks: two
// network namespaces joined by a veth pair, RPS on the receiving side, small net.core limits,
// and bounded UDP floods. Traffic only ever goes to addresses inside the namespaces it made.
//
// Every change is undone by Close, in reverse order. What a killed process could not undo is
// undone by CleanupStale (or the next lab that changes sysctls): each lab holds a lock file
// while it lives, and global sysctls are journaled under a host-wide lock before they change.
package netlab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// StateDir holds the labs' lock files, beside the host-wide sysctl lock and journal.
const StateDir = sysctl.LockDir

// SysctlLockWait bounds how long SetSysctl waits for another lab (another test package, or
// dtlab) to restore the sysctls it changed.
var SysctlLockWait = 5 * time.Minute

// Lab is one sender namespace and one receiver namespace joined by a veth pair.
type Lab struct {
	Sender, Receiver         string // netns names
	SenderIf, ReceiverIf     string
	SenderAddr, ReceiverAddr netip.Addr

	prefix, id string
	lock       *os.File        // held while the lab exists: CleanupStale leaves live labs alone
	journal    *sysctl.Journal // the sysctl lock, once SetSysctl was called

	mu   sync.Mutex // guards undo: sockets may be opened from several goroutines
	undo []func() error
}

// onClose registers an undo step; Close runs them newest first.
func (l *Lab) onClose(fn func() error) {
	l.mu.Lock()
	l.undo = append(l.undo, fn)
	l.mu.Unlock()
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// checkPrefix keeps the names of a lab's namespaces and lock files plain, and the prefix never
// empty: an empty prefix would make CleanupStale match every namespace on the host.
func checkPrefix(prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab prefix %q: want a lowercase name of 1-20 letters, digits and dashes", prefix)
	}
	return nil
}

// New creates the namespaces (prefix+"tx-"+id and prefix+"rx-"+id), the veth pair, addresses in
// a /24 of 10.251.0.0/16 (they exist only inside these namespaces, so labs never collide), lo up
// in both, a permanent neighbour entry (so no ARP queue drops blur the scenario) and IPv6 off
// (no DAD/MLD noise). Nothing global changes until a setter is called.
func New(prefix string) (*Lab, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("lab id: %w", err)
	}
	id := hex.EncodeToString(rnd[:])
	l := &Lab{
		Sender: prefix + "tx-" + id, Receiver: prefix + "rx-" + id,
		SenderIf: "dt" + id + "s", ReceiverIf: "dt" + id + "r",
		SenderAddr:   netip.AddrFrom4([4]byte{10, 251, rnd[0], 1}),
		ReceiverAddr: netip.AddrFrom4([4]byte{10, 251, rnd[0], 2}),
		prefix:       prefix, id: id,
	}
	if err := l.setup(); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
		}
		return nil, err
	}
	return l, nil
}

func labLockPath(prefix, id string) string {
	return filepath.Join(StateDir, "lab-"+prefix+id+".lock")
}

func (l *Lab) setup() error {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("lab state directory: %w", err)
	}
	// The lock file appears already locked (locked under a temporary name, then renamed) and
	// before the namespaces exist, so CleanupStale elsewhere never takes a live lab for stale.
	lockPath := labLockPath(l.prefix, l.id)
	f, err := os.CreateTemp(StateDir, ".lab-*")
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, f.Name(), unix.AT_FDCWD, lockPath, unix.RENAME_NOREPLACE); err != nil {
		os.Remove(f.Name())
		f.Close()
		return fmt.Errorf("lab lock %s: %w", lockPath, err)
	}
	l.lock = f
	l.onClose(func() error {
		err := os.Remove(lockPath)
		l.lock.Close()
		return err
	})

	for _, ns := range []string{l.Sender, l.Receiver} {
		if err := ip("netns", "add", ns); err != nil {
			return err
		}
		name := ns
		l.onClose(func() error { return ip("netns", "del", name) })
		if err := l.inNetns(ns, func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0o644)
		}); err != nil {
			return fmt.Errorf("disable IPv6 in %s: %w", ns, err)
		}
	}
	steps := [][]string{
		{"link", "add", l.SenderIf, "netns", l.Sender, "type", "veth", "peer", "name", l.ReceiverIf, "netns", l.Receiver},
		{"-n", l.Sender, "addr", "add", l.SenderAddr.String() + "/24", "dev", l.SenderIf},
		{"-n", l.Receiver, "addr", "add", l.ReceiverAddr.String() + "/24", "dev", l.ReceiverIf},
		{"-n", l.Sender, "link", "set", "lo", "up"},
		{"-n", l.Receiver, "link", "set", "lo", "up"},
		{"-n", l.Sender, "link", "set", l.SenderIf, "up"},
		{"-n", l.Receiver, "link", "set", l.ReceiverIf, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	mac, err := l.sysfs(l.Receiver, "cat", "/sys/class/net/"+l.ReceiverIf+"/address")
	if err != nil {
		return fmt.Errorf("read %s MAC: %w", l.ReceiverIf, err)
	}
	return ip("-n", l.Sender, "neigh", "replace", l.ReceiverAddr.String(), "lladdr", mac,
		"dev", l.SenderIf, "nud", "permanent")
}

func (l *Lab) inNetns(name string, fn func() error) error {
	return netns.Do(netns.RunDir+"/"+name, fn)
}

// sysfs runs a command under `ip netns exec`, which mounts a sysfs of the namespace: the
// process's own /sys shows the namespace that mounted it, where the lab's veths are not.
func (l *Lab) sysfs(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// Close undoes everything New and the setters did, in reverse order, and reports every failure.
// Closing twice is harmless.
func (l *Lab) Close() error {
	l.mu.Lock()
	undo := l.undo
	l.undo = nil
	l.mu.Unlock()
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
