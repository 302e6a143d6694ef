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
