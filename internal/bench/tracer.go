// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BpftraceProgram is the peer baseline: what a user would type to count drops by reason and
// CPU. bpftrace 0.17 (Debian 12) names tracepoint arguments args->field.
const BpftraceProgram = `tracepoint:skb:kfree_skb { @[args->reason, cpu] = count(); }`

// Proc is a tracer process under measurement.
type Proc struct {
	Name    string
	cmd     *exec.Cmd
	started time.Time
	// Ready is how long the tracer took from exec to tracing (attach-to-ready).
	Ready time.Duration
	// Output is droptrace's JSON lines file ("" for bpftrace).
	Output  string
	stopSig os.Signal
	stderr  *tailBuffer
	exited  chan struct{}
	waitErr error
}

// Exit is what a stopped tracer left behind.
type Exit struct {
	CPU time.Duration // user + system time over its whole life
	// PeakRSS is the last VmHWM read before the tracer exited, polled every few milliseconds
	// while it shuts down. rusage's ru_maxrss is no use here: a child started with vfork
	// (os/exec) inherits its parent's resident set as its high-water mark at exec.
	PeakRSS uint64
}

// tailBuffer keeps the last 16 KiB of a stream, for error messages.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if n := len(t.b) - 16<<10; n > 0 {
		t.b = append(t.b[:0], t.b[n:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// StartDroptrace runs droptrace writing JSON lines into dir and waits until it reports ready
// (its --ready-file appears: programs attached and first counters read).
func StartDroptrace(ctx context.Context, bin, dir string, args ...string) (*Proc, error) {
	out := filepath.Join(dir, "droptrace.jsonl")
	ready := filepath.Join(dir, "ready")
	os.Remove(ready)
	args = append([]string{"--live", "off", "--output", out, "--ready-file", ready}, args...)
	p := &Proc{Name: "droptrace", Output: out, stopSig: syscall.SIGTERM, stderr: &tailBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p.stderr
	if err := p.start(); err != nil {
		return nil, err
	}
	err := p.waitReady(ctx, func() (bool, error) {
		_, err := os.Stat(ready)
		return err == nil, nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// StartBpftrace runs the bpftrace one-liner and waits until its tracepoint is attached, which
// it learns from the kernel (BPF_TASK_FD_QUERY on the process's descriptors): bpftrace prints
// "Attaching" before it attaches.
func StartBpftrace(ctx context.Context, bin string) (*Proc, error) {
	p := &Proc{Name: "bpftrace", stopSig: syscall.SIGINT, stderr: &tailBuffer{}}
	p.cmd = exec.Command(bin, "-e", BpftraceProgram)
	// bpftrace prints its maps on exit; they are not needed, but the pipe must not fill.
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	if err := p.start(); err != nil {
		return nil, err
	}
	err := p.waitReady(ctx, func() (bool, error) {
		return tracepointAttached(p.cmd.Process.Pid, "kfree_skb")
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proc) start() error {
	p.exited = make(chan struct{})
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

func (p *Proc) waitReady(ctx context.Context, ready func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := ready()
		if err != nil {
			p.kill()
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if ok {
			p.Ready = time.Since(p.started)
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it was ready (%v): %s", p.Name, p.waitErr, lastLines(p.stderr.String(), 10))
		case <-ctx.Done():
			p.kill()
			return fmt.Errorf("%s not ready: %w; stderr: %s", p.Name, ctx.Err(), lastLines(p.stderr.String(), 10))
		case <-tick.C:
		}
	}
}

func (p *Proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// Pid is the tracer's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stderr is the tail of what the tracer wrote to stderr.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Stop ends the tracer the way a user does (SIGTERM for droptrace, SIGINT for bpftrace) and
// waits up to timeout for it to exit; past that it is killed and an error returned.
func (p *Proc) Stop(timeout time.Duration) (Exit, error) {
	if err := p.cmd.Process.Signal(p.stopSig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return Exit{}, err
	}
	return p.Wait(timeout)
}

// Wait waits up to timeout for the tracer to exit by itself, and kills it past that.
func (p *Proc) Wait(timeout time.Duration) (Exit, error) {
	var e Exit
	deadline := time.Now().Add(timeout)
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
wait:
	for {
		// VmHWM only grows while the process lives; its memory is gone once it has exited.
		if m, err := ReadMemory(p.Pid()); err == nil {
			e.PeakRSS = max(e.PeakRSS, m.HWM)
		}
		select {
		case <-p.exited:
			break wait
		case <-poll.C:
			if time.Now().After(deadline) {
				p.kill()
				return e, fmt.Errorf("%s did not exit within %s of %v; killed", p.Name, timeout, p.stopSig)
			}
		}
	}
	if st := p.cmd.ProcessState; st != nil {
		e.CPU = st.UserTime() + st.SystemTime()
	}
	if p.waitErr != nil {
		return e, fmt.Errorf("%s: %w; stderr: %s", p.Name, p.waitErr, lastLines(p.stderr.String(), 10))
	}
	return e, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// taskFDQuery is union bpf_attr's task_fd_query (include/uapi/linux/bpf.h).
type taskFDQuery struct {
	pid, fd, flags, bufLen uint32
	buf                    uint64
	progID, fdType         uint32
	probeOffset, probeAddr uint64
}

const (
	bpfTaskFDQuery      = 20 // BPF_TASK_FD_QUERY
	bpfFDTypeTracepoint = 1  // BPF_FD_TYPE_TRACEPOINT
)

// tracepointAttached says whether process pid holds a perf event with a BPF program attached
// to the tracepoint named event.
func tracepointAttached(pid int, event string) (bool, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, nil // exited or not started yet: waitReady notices an exit
	}
	buf := make([]byte, 256)
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		q := taskFDQuery{pid: uint32(pid), fd: uint32(fd), bufLen: uint32(len(buf)),
			buf: uint64(uintptr(unsafe.Pointer(&buf[0])))}
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfTaskFDQuery, uintptr(unsafe.Pointer(&q)), unsafe.Sizeof(q))
		if errno != 0 {
			continue // not a BPF-carrying perf event or raw tracepoint
		}
		name := buf[:min(int(q.bufLen), len(buf))]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if q.fdType == bpfFDTypeTracepoint && string(name) == event {
			return true, nil
		}
	}
	return false, nil
}

// LookBpftrace finds bpftrace on PATH.
func LookBpftrace() (string, error) {
	p, err := exec.LookPath("bpftrace")
	if err != nil {
		return "", errors.New("bpftrace is not installed (apt-get install -y bpftrace)")
	}
	return p, nil
}
