// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Probe statuses say what to do about the common failures, found through the error chain
// rather than the message.
func TestHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // in the hint; "" for none
	}{
		{"EPERM", fmt.Errorf("load program: %w", unix.EPERM), "run with sudo"},
		{"EACCES", fmt.Errorf("create map: %w", unix.EACCES), "run with sudo"},
		{"permission text only", errors.New("load program: operation not permitted"), ""},
		{"tracefs", fmt.Errorf("open /sys/kernel/tracing/events/skb/kfree_skb/id: %w", os.ErrNotExist), "mount -t tracefs"},
		{"other ENOENT", fmt.Errorf("open /sys/kernel/btf/vmlinux: %w", unix.ENOENT), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hint(tc.err)
			if tc.want == "" {
				if h != tc.err.Error() {
					t.Errorf("hint %q, want the error alone", h)
				}
			} else if !strings.Contains(h, tc.want) {
				t.Errorf("hint %q lacks %q", h, tc.want)
			}
		})
	}
	long := errors.New("load program: permission denied:\n0: R1=ctx\n1: (b7) r0 = 0")
	if h := hint(long); h != "load program: permission denied:" {
		t.Errorf("verifier log not cut to its first line: %q", h)
	}
}

// When nothing attached, the error says what is actually wrong: without the capabilities, that
// and the command that fixes it, not the library's RLIMIT_MEMLOCK advice; with them, the
// loader's errors without that advice, and the limit only when it could not be raised.
func TestNoTracingSaysTheCause(t *testing.T) {
	denied := []error{
		fmt.Errorf("skb:kfree_skb: create BPF maps: map events: map create: %w%s", unix.EPERM, libraryAdvice),
		fmt.Errorf("NET_RX accounting: create BPF maps: map netrx_percpu: map create: %w%s", unix.EPERM, libraryAdvice),
	}
	memlock := fmt.Errorf("failed to set memlock rlimit: %w", unix.EPERM)
	for _, tc := range []struct {
		name       string
		errs       []error
		memlockErr error
		privileged bool
		want, not  []string
	}{
		{"unprivileged", denied, memlock, false,
			[]string{"may not load BPF programs", "CAP_BPF and CAP_PERFMON"},
			[]string{"MEMLOCK", "RemoveMemlock"}},
		{"privileged, limit raised", denied, nil, true,
			[]string{"skb:kfree_skb: create BPF maps", "NET_RX accounting"},
			[]string{"MEMLOCK", "RemoveMemlock", "sudo"}},
		{"privileged, old kernel, limit not raised", denied, memlock, true,
			[]string{"skb:kfree_skb: create BPF maps", "raising RLIMIT_MEMLOCK failed too", "CAP_SYS_RESOURCE"},
			[]string{"RemoveMemlock"}},
		{"unprivileged, not a refusal", []error{fmt.Errorf("tp_btf: %w", unix.EINVAL)}, nil, false,
			[]string{"tp_btf: invalid argument"}, []string{"sudo"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := noTracing(tc.errs, tc.memlockErr, tc.privileged)
			if !errors.Is(err, ErrNoTracing) || !errors.Is(err, tc.errs[0]) {
				t.Errorf("%v does not wrap ErrNoTracing and the loader's error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("%q has %q", err, n)
				}
			}
		})
	}
	if h := hint(denied[0]); strings.Contains(h, "RemoveMemlock") || !strings.Contains(h, "run with sudo") {
		t.Errorf("hint %q: want the library's advice replaced by the fix", h)
	}
}

// sudo is the fix for a user, not for root whose capabilities a container or a unit cut.
func TestRefusedMessageFitsTheUser(t *testing.T) {
	if m := refusedMessage(1000); !strings.Contains(m, "uid 1000") || !strings.Contains(m, "run droptrace with sudo") {
		t.Errorf("for a user: %q", m)
	}
	m := refusedMessage(0)
	if strings.Contains(m, "sudo") || !strings.Contains(m, "lacks CAP_BPF and CAP_PERFMON") {
		t.Errorf("for root with a cut capability set: %q", m)
	}
}
