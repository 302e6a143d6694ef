// SPDX-License-Identifier: Apache-2.0

package flood

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// allowedCPUs is the CPUs this process may run on.
func allowedCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := range MaxCPU {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// closedPort is a loopback UDP port nothing is bound to (the kernel picked it for a socket
// that is then closed).
func closedPort(t *testing.T) uint16 {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(sa.(*unix.SockaddrInet4).Port)
}

func udpSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A flood must stop at its context or its duration even while every send fails with a full
// buffer (an unread socket pair), and end on any other error.
func TestSendStopsWhileBufferFull(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	msgs := newBatch(nil, 64, 8)

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r, err := send(ctx, fds[0], msgs, Config{Count: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent == 0 || r.Sent >= 1<<30 {
		t.Errorf("sent %d into an unread socket pair until the context ended", r.Sent)
	}

	r, err = send(context.Background(), fds[0], msgs, Config{Count: 1 << 30, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent >= 1<<30 || r.Elapsed < 100*time.Millisecond {
		t.Errorf("sent %d in %s, bounded by a duration of 100ms", r.Sent, r.Elapsed)
	}

	if _, err := send(context.Background(), -1, msgs, Config{Count: 10}); !errors.Is(err, unix.EBADF) {
		t.Errorf("bad descriptor: %v", err)
	}
}

// The count is exact, even when it is not a multiple of the batch.
func TestRunCount(t *testing.T) {
	cpu := allowedCPUs(t)[0]
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), closedPort(t))
	for _, count := range []uint64{0, 1, 1000} {
		r, err := Run(context.Background(), udpSocket(t), dst, Config{CPU: cpu, Size: 64, Batch: 64, Count: count, Duration: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if r.Sent != count {
			t.Errorf("sent %d, want exactly the count of %d", r.Sent, count)
		}
		if count > 0 && r.CPU <= 0 {
			t.Errorf("flood thread CPU time %s", r.CPU)
		}
	}
}

func TestRunRejects(t *testing.T) {
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 9)
	for _, tc := range []struct {
		dst  netip.AddrPort
		c    Config
		want string
	}{
		{dst, Config{Size: 0, Count: 1}, "bytes"},
		{dst, Config{Size: 65508, Count: 1}, "bytes"},
		{netip.AddrPortFrom(netip.MustParseAddr("::1"), 9), Config{Size: 64, Count: 1}, "IPv4"},
		{dst, Config{CPU: -1, Size: 64, Count: 1}, "out of range"},
		{dst, Config{CPU: MaxCPU, Size: 64, Count: 1}, "out of range"},
	} {
		if _, err := Run(context.Background(), -1, tc.dst, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%s, %+v): %v, want an error saying %q", tc.dst, tc.c, err, tc.want)
		}
	}
}

// OnCPU runs on the CPU asked for, and leaves no thread of the process pinned there: the
// thread it used is given back with its affinity restored, or not given back at all.
func TestOnCPU(t *testing.T) {
	cpus := allowedCPUs(t)
	if len(cpus) < 2 {
		t.Skipf("SKIPPED: one allowed CPU (%v): pinning changes nothing to check", cpus)
	}
	want := errors.New("from fn")
	cpu := cpus[len(cpus)-1]
	err := OnCPU(cpu, func() error {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return err
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("fn ran with affinity of %d CPUs, want CPU %d alone", set.Count(), cpu)
		}
		return want
	})
	if !errors.Is(err, want) {
		t.Errorf("OnCPU returned %v, want fn's error", err)
	}
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread has exited
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) == strconv.Itoa(cpu) {
				t.Errorf("%s: a thread is still pinned to CPU %d", p, cpu)
			}
		}
	}
}

// A flood to a sink is delivered, all of it.
func TestPrivSink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: SO_RCVBUFFORCE needs root; run as root to cover Sink")
	}
	cpus := allowedCPUs(t)
	lo := netip.MustParseAddr("127.0.0.1")
	sink, err := NewSink(lo, cpus[len(cpus)-1], 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	dst := netip.AddrPortFrom(lo, uint16(sink.Port))
	if _, err := Run(context.Background(), udpSocket(t), dst, Config{CPU: cpus[0], Size: 64, Count: 500, Duration: time.Minute}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); sink.Received() < 500 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if sink.Received() != 500 {
		t.Errorf("sink read %d of 500 datagrams", sink.Received())
	}
	if _, err := NewSink(lo, -1, 1<<20); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("sink on CPU -1: %v", err)
	}
}
