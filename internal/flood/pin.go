// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxCPU is the number of CPUs a unix.CPUSet holds (glibc's CPU_SETSIZE).
const MaxCPU = int(unsafe.Sizeof(unix.CPUSet{})) * 8

// OnCPU runs fn on an OS thread pinned to cpu and returns fn's error. The thread goes back to
// the runtime only once its CPU affinity is restored; if that fails, the goroutine that ran fn
// ends locked to the thread, and Go discards the thread rather than reuse it pinned.
func OnCPU(cpu int, fn func() error) error {
	if cpu < 0 || cpu >= MaxCPU {
		return fmt.Errorf("CPU %d: out of range", cpu)
	}
	res := make(chan error, 1)
	go func() { res <- onCPU(cpu, fn) }()
	return <-res
}

func onCPU(cpu int, fn func() error) error {
	runtime.LockOSThread()
	var orig, pin unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("read thread affinity: %w", err)
	}
	pin.Set(cpu)
	if err := unix.SchedSetaffinity(0, &pin); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	err := fn()
	if rerr := unix.SchedSetaffinity(0, &orig); rerr != nil {
		return errors.Join(err, fmt.Errorf("restore thread affinity: %w", rerr))
	}
	runtime.UnlockOSThread()
	return err
}
