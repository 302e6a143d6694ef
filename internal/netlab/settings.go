// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"fmt"

	"github.com/droptrace/droptrace/internal/flood"
	"github.com/droptrace/droptrace/internal/hostctx"
	"github.com/droptrace/droptrace/internal/sysctl"
)

// SetRPS steers the receiving veth's rx-0 queue to cpus; Close restores the mask it had.
func (l *Lab) SetRPS(cpus ...int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("SetRPS: no CPUs (an empty mask turns RPS off; say so by not calling SetRPS)")
	}
	for _, c := range cpus {
		// The kernel refuses CPUs it does not have; this only keeps the mask string sane.
		if c < 0 || c >= flood.MaxCPU {
			return fmt.Errorf("RPS CPU %d: out of range", c)
		}
	}
	path := fmt.Sprintf("/sys/class/net/%s/queues/rx-0/rps_cpus", l.ReceiverIf)
	orig, err := l.sysfs(l.Receiver, "cat", path)
	if err != nil {
		return fmt.Errorf("read RPS mask (needs CONFIG_RPS): %w", err)
	}
	write := func(mask string) error {
		_, err := l.sysfs(l.Receiver, "sh", "-c", `echo "$1" > "$2"`, "sh", mask, path)
		return err
	}
	if err := write(hostctx.FormatCPUMask(cpus)); err != nil {
		return fmt.Errorf("set RPS: %w", err)
	}
	l.onClose(func() error {
		if err := write(orig); err != nil {
			return fmt.Errorf("restore RPS mask %s: %w", orig, err)
		}
		return nil
	})
	return nil
}

// SetSysctl sets a sysctl of the host's namespace (net.core ones are global) and restores its
// value on Close, in reverse order of setting. The first call takes the host-wide sysctl lock,
// waiting up to SysctlLockWait for another lab to finish, so labs in concurrent test processes
// never record each other's temporary values as originals. It is held until Close, so a second
// lab in the same process waits for the first to close. The original value is journaled before
// the write, so a process killed before Close (a test timeout) is undone by the next lab or by
// CleanupStale.
func (l *Lab) SetSysctl(name, value string) error {
	if l.journal == nil {
		j, err := sysctl.Lock(SysctlLockWait)
		if err != nil {
			return err
		}
		l.journal = j
		l.onClose(func() error {
			j := l.journal
			l.journal = nil
			return j.Close() // and with it the lock
		})
	}
	restore, err := l.journal.Set(name, value)
	if err != nil {
		return err
	}
	l.onClose(restore)
	return nil
}
