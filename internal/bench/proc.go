// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/snmp"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (the ABI fixed it; CONFIG_HZ does not change it).
const clockTick = 100

// CPUTime is a process's user plus system time, all threads, from /proc/<pid>/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (time.Duration, error) {
	// comm (field 2) may contain spaces and parentheses: fields are counted after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/pid/stat: no ')' after comm")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/pid/stat: %d fields after comm, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/pid/stat: utime %q stime %q", f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// Memory is a process's resident set from /proc/<pid>/status, in bytes.
type Memory struct {
	HWM, RSS uint64 // VmHWM (peak) and VmRSS (now)
}

// ReadMemory reads VmHWM and VmRSS of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("/proc/pid/status %s: %q", k, v)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("/proc/pid/status %s: %w", k, err)
		}
		if k == "VmHWM" {
			m.HWM = n << 10
		} else {
			m.RSS = n << 10
		}
		seen++
	}
	if seen != 2 {
		return m, fmt.Errorf("/proc/pid/status: no VmHWM/VmRSS (a kernel thread, or the process exited)")
	}
	return m, nil
}

// UDPCounters are the host namespace's UDP drop counters (the floods' drops are counted here).
type UDPCounters struct {
	NoPorts, RcvbufErrors, InDatagrams uint64
}

// ReadUDP reads /proc/net/snmp of the calling thread's namespace.
func ReadUDP() (UDPCounters, error) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return UDPCounters{}, err
	}
	defer f.Close()
	c, err := snmp.Parse(f)
	if err != nil {
		return UDPCounters{}, err
	}
	var u UDPCounters
	u.NoPorts, _ = c.Get("Udp", "NoPorts")
	u.RcvbufErrors, _ = c.Get("Udp", "RcvbufErrors")
	u.InDatagrams, _ = c.Get("Udp", "InDatagrams")
	return u, nil
}

// Sub is the counters' advance from p to u.
func (u UDPCounters) Sub(p UDPCounters) UDPCounters {
	return UDPCounters{NoPorts: u.NoPorts - p.NoPorts, RcvbufErrors: u.RcvbufErrors - p.RcvbufErrors,
		InDatagrams: u.InDatagrams - p.InDatagrams}
}
