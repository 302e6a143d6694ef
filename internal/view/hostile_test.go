// SPDX-License-Identifier: Apache-2.0

package view

import (
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/explain"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt/texttest"
)

// overflowingSocket is the summary with a UDP socket that overflows, owned by a process
// named comm: the socket verdict names its owner.
func overflowingSocket(comm string) (*record.Start, *record.Interval) {
	start, iv := fullStart(), summary()
	// A tenth of what the host received, so the verdict is a warning and shown.
	iv.Drops["SOCKET_RCVBUFF"] = 2_000_000
	iv.Ports = []record.PortDrops{{Reason: "SOCKET_RCVBUFF", L4: "udp", Port: 9000, Netns: 4026531840, Events: 3120,
		Holder: record.Holder{PID: 4242, Comm: comm, Cgroup: "/system.slice/" + comm + ".service"}, SocketDrops: 91234}}
	iv.Verdicts = explain.Explain(start, iv)
	return start, iv
}

// A process may name itself anything: its name must not set the terminal's title or clear
// the screen of whoever watches the live view.
func TestHostileProcessName(t *testing.T) {
	start, iv := overflowingSocket(texttest.Hostile)
	if !strings.Contains(verdictCauses(iv), "socket of pid 4242 ("+texttest.Hostile+")") {
		t.Fatalf("the fixture's verdicts do not name the process:\n%s", verdictCauses(iv))
	}
	out := Render(start, iv, Options{Width: 200})
	if err := texttest.Printable(out); err != nil {
		t.Errorf("live view: %v", err)
	}
	if want := `socket of pid 4242 (\x1b]0;PWN\x07\x1b[2J)`; !strings.Contains(out, want) {
		t.Errorf("live view does not show %s, escaped; got:\n%s", want, out)
	}
	if iv.Ports[0].Comm != texttest.Hostile {
		t.Error("rendering changed the record")
	}
}

func verdictCauses(iv *record.Interval) string {
	var b strings.Builder
	for _, v := range iv.Verdicts {
		b.WriteString(v.Cause + "\n")
	}
	return b.String()
}

// socketScreen is the summary with an overflowing socket and the host context, the fullest
// screen.
func socketScreen() screen {
	start, iv := overflowingSocket("collector")
	iv.McastChanges = []string{"eth0 joined 239.1.1.1"}
	iv.RxDropped = map[string]uint64{"eth0": 3}
	start.Context = &record.HostContext{Interfaces: []record.Interface{{Name: "eth0", RxQueues: 1}},
		Sysctls: map[string]string{"net.core.rmem_max": "212992"}}
	return screen{"socket", start, iv}
}

// hostileScreen is test screen i (of any number) with s appended to every string of its
// records that a host or a recording decides: names, reasons, locations, notes, verdicts
// (the socket owner's name too), changes.
func hostileScreen(s string, i uint) screen {
	all := append([]screen{socketScreen()}, screens()...)
	all = append(all, screen{"no start", nil, summary()})
	sc := all[i%uint(len(all))]
	texttest.Taint(sc.start, s)
	texttest.Taint(sc.iv, s)
	return sc
}

// FuzzRender draws one screen of hostile records an input, without color at the narrowest
// width or with color, so that each input costs one screen's time.
func FuzzRender(f *testing.F) {
	for _, s := range []string{texttest.Hostile, "\u009b2J\x7f", "\xff\xfe", "\u202e", "日本\t\r\n", ""} {
		for i := range uint(5) {
			f.Add(s, i, i%2 == 1)
		}
	}
	f.Fuzz(func(t *testing.T, s string, i uint, color bool) {
		sc := hostileScreen(s, i)
		if color {
			// The only escapes are the view's own.
			out := Render(sc.start, sc.iv, Options{Width: 120, Color: true})
			if err := texttest.Printable(ansi.ReplaceAllString(out, "")); err != nil {
				t.Fatalf("%s with color: %v", sc.name, err)
			}
			return
		}
		const width = 80 // the narrowest: where escaped names must be clipped
		out := Render(sc.start, sc.iv, Options{Width: width})
		if err := texttest.Printable(out); err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		for n, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if w := len([]rune(line)); w > width {
				t.Errorf("%s: line %d has %d columns: %q", sc.name, n+1, w, line)
			}
		}
	})
}
