// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// libraryAdvice is what cilium/ebpf appends to every EPERM from creating a map or loading a
// program. It is the cause only on a kernel before 5.11 (which charges BPF memory to
// RLIMIT_MEMLOCK) whose limit could not be raised; an unprivileged user gets the same EPERM
// with the same advice, and there the cause is the missing capabilities. droptrace raises the
// limit itself and says so when it cannot, so the advice is always dropped.
const libraryAdvice = " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)"

// Capability numbers (include/uapi/linux/capability.h); CAP_BPF and CAP_PERFMON are in the
// second 32-bit word.
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// mayLoadBPF says whether this process has the capabilities BPF tracing needs: CAP_BPF and
// CAP_PERFMON (Linux 5.8 and later), or CAP_SYS_ADMIN. It reports true when they cannot be
// read, so that the error of the load itself is shown rather than a guess.
func mayLoadBPF() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	return has(capSysAdmin) || has(capBPF) && has(capPerfmon)
}

// noTracingError is what Open returns when no program attached: a message that says what is
// wrong and what fixes it, over the loader's errors (errors.Is finds ErrNoTracing and them).
type noTracingError struct {
	msg  string
	errs error
}

func (e *noTracingError) Error() string   { return e.msg }
func (e *noTracingError) Unwrap() []error { return []error{ErrNoTracing, e.errs} }

// noTracing explains why no program attached. privileged is mayLoadBPF's answer and memlockErr
// the failure to raise RLIMIT_MEMLOCK, if any.
func noTracing(errs []error, memlockErr error, privileged bool) error {
	joined := errors.Join(errs...)
	if !privileged && allPermission(errs) {
		return &noTracingError{msg: refusedMessage(os.Geteuid()), errs: joined}
	}
	lines := make([]string, 0, len(errs)+1)
	for _, err := range errs {
		lines = append(lines, withoutLibraryAdvice(err.Error()))
	}
	if memlockErr != nil {
		lines = append(lines, fmt.Sprintf("raising RLIMIT_MEMLOCK failed too (kernels before 5.11 need CAP_SYS_RESOURCE): %v", memlockErr))
		joined = errors.Join(joined, memlockErr)
	}
	return &noTracingError{msg: fmt.Sprintf("%s: %s", ErrNoTracing, strings.Join(lines, "\n")), errs: joined}
}

// refusedMessage says what to do when the kernel refused every program for lack of privilege.
// For root that means its capabilities were cut (a container, a unit's CapabilityBoundingSet), so
// sudo would not help.
func refusedMessage(euid int) string {
	if euid == 0 {
		return fmt.Sprintf("%s: uid 0 may not load BPF programs: its capability set lacks CAP_BPF and CAP_PERFMON (cut by a container or a unit's CapabilityBoundingSet): grant both", ErrNoTracing)
	}
	return fmt.Sprintf("%s: uid %d may not load BPF programs (it needs root, or CAP_BPF and CAP_PERFMON): run droptrace with sudo", ErrNoTracing, euid)
}

// allPermission says whether every error is a refusal (EPERM or EACCES).
func allPermission(errs []error) bool {
	for _, err := range errs {
		if !isPermission(err) {
			return false
		}
	}
	return len(errs) > 0
}

func isPermission(err error) bool { return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) }

func withoutLibraryAdvice(msg string) string { return strings.ReplaceAll(msg, libraryAdvice, "") }
