// SPDX-License-Identifier: Apache-2.0

package session

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
	"github.com/droptrace/droptrace/internal/locreason"
	"github.com/droptrace/droptrace/internal/locreason/locreasontest"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/sample"
	"github.com/droptrace/droptrace/internal/snmp"
	"github.com/droptrace/droptrace/internal/sysctl"
	"github.com/droptrace/droptrace/internal/tracer"
)

// kernel515 is a session on a 5.15.100 kernel as open leaves it: reasons from the 5.15.100 enum
// (5.17's twelve), locations from the 5.15 fixture, and calibration having learned the
// full-socket call site of udp_queue_rcv_one_skb (the closed-port one passes NO_SOCKET there,
// so there is nothing to learn). at turns "function+0xoff" into an address.
func kernel515(t *testing.T) (s *Session, start *record.Start, at func(string) uint64) {
	t.Helper()
	syms := locreasontest.Symbols(t, "../locreason/testdata/5.15/kallsyms")
	at = func(loc string) uint64 { return locreasontest.Addr(t, syms, loc) }
	s = testSession()
	s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	s.reasons, s.syms = dropreasontest.Table(t, "5.15.100"), syms
	start = &record.Start{ReasonSource: record.ReasonSourceKernel}
	s.locate(start, record.ReasonSourceKernelLocation, func(n *locreason.Namer) {
		n.Learn(at("udp_queue_rcv_one_skb+0x2fa"), "SOCKET_RCVBUFF")
	})
	s.checkNames()
	s.names.Reason = s.reasonName
	return s, start, at
}

// Where the enum is 5.17's, the kernel's NOT_SPECIFIED drops take their location's reason when
// it gives one, and keep NOT_SPECIFIED otherwise; reasons the kernel passes are kept.
func TestShortEnumNamesNotSpecifiedFromTheLocation(t *testing.T) {
	s, start, at := kernel515(t)
	if start.ReasonSource != record.ReasonSourceKernelLocation {
		t.Errorf("reason_source %q", start.ReasonSource)
	}
	const notSpecified, noSocket, udpCsum = 0, 1, 5
	cases := []struct {
		code uint32
		loc  string
		want string
	}{
		{notSpecified, "enqueue_to_backlog+0x1e3", "CPU_BACKLOG"},
		{notSpecified, "udp_queue_rcv_one_skb+0x2fa", "SOCKET_RCVBUFF"},
		{notSpecified, "__udp_queue_rcv_skb+0x11c", "SOCKET_RCVBUFF"},
		{noSocket, "__udp4_lib_rcv+0x8f1", "NO_SOCKET"},
		{notSpecified, "udp_queue_rcv_one_skb+0x1b0", "NOT_SPECIFIED"},
		{notSpecified, "__udp4_lib_rcv+0x9b2", "NOT_SPECIFIED"},
		{notSpecified, "tcp_v4_rcv+0x5e", "NOT_SPECIFIED"},
		{udpCsum, "udp_queue_rcv_one_skb+0x1b0", "UDP_CSUM"},
		// A reason the kernel passes wins over what the location would say.
		{udpCsum, "enqueue_to_backlog+0x1e3", "UDP_CSUM"},
	}
	for _, c := range cases {
		if got := s.reasonName(c.code, at(c.loc)); got != c.want {
			t.Errorf("%s with code %d: named %q, want %q", c.loc, c.code, got, c.want)
		}
	}
	if s.avail.Unnamed["SOCKET_RCVBUFF"] || s.avail.Unnamed["NO_SOCKET"] || !s.avail.Unnamed["TCP_LISTEN_OVERFLOW"] {
		t.Errorf("unnamed %v: want only TCP_LISTEN_OVERFLOW", s.avail.Unnamed)
	}
	if !strings.Contains(s.avail.Located["SOCKET_RCVBUFF"], "udp_mem") || s.avail.Located["NO_SOCKET"] != "" {
		t.Errorf("located %v: want the udp_mem note on SOCKET_RCVBUFF, nothing on NO_SOCKET (the kernel names it)", s.avail.Located)
	}
}

// The checks of a 5.15.100 host reconcile: backlog and full-socket drops, which the kernel
// frees as NOT_SPECIFIED, are traced under the names the counters' checks look for, and the
// socket-level ones are listed by port.
func TestShortEnumChecksReconcile(t *testing.T) {
	s, _, at := kernel515(t)
	mk := func(sec int, n uint64) *sample.Sample {
		sm := mkSample(sampleSpec{at: time.Duration(sec) * time.Second, dropped: [2]uint32{0, uint32(3 * n)}, ns200: true})
		key := func(code uint32, l4 uint8, loc string) tracer.DropKey {
			return tracer.DropKey{Reason: code, Netns: 200, Ifindex: 2, L3: tracer.EthIPv4, L4: l4, Location: at(loc)}
		}
		sm.Drops = map[tracer.DropKey][]uint64{
			key(0, 17, "enqueue_to_backlog+0x1e3"):    {3 * n, 0},
			key(0, 17, "udp_queue_rcv_one_skb+0x2fa"): {0, 2 * n},
			key(1, 17, "__udp4_lib_rcv+0x8f1"):        {n, 0},
			key(0, 6, "tcp_v4_rcv+0x5e"):              {n, 0},
			key(0, 17, "udp_queue_rcv_one_skb+0x1b0"): {0, n},
		}
		sm.Netns[200] = &sample.Netns{NS: netns.NS{Inode: 200, Name: "rx"},
			SNMP: snmp.Counters{"Udp": {"RcvbufErrors": 2 * n, "NoPorts": n}, "TcpExt": {"ListenOverflows": 0}}}
		if n > 0 {
			sm.Sockets = []tracer.SockCount{
				{Key: tracer.SockKey{Netns: 200, Location: at("udp_queue_rcv_one_skb+0x2fa"), L3: tracer.EthIPv4, L4: 17, Port: 9000}, Count: 2 * n},
				{Key: tracer.SockKey{Netns: 200, Location: at("udp_queue_rcv_one_skb+0x1b0"), L3: tracer.EthIPv4, L4: 17, Port: 9001}, Count: n},
			}
		}
		return sm
	}
	d := s.diff(mk(0, 0), mk(1, 100))
	iv := s.record(d, 1, sysctl.NetCore{})
	want := map[string]uint64{"CPU_BACKLOG": 300, "SOCKET_RCVBUFF": 200, "NO_SOCKET": 100, "NOT_SPECIFIED": 200}
	for r, n := range want {
		if iv.Drops[r] != n {
			t.Errorf("drops[%s] = %d, want %d (all: %v)", r, iv.Drops[r], n, iv.Drops)
		}
	}
	for _, name := range []string{"backlog_drops", "udp_rcvbuf", "udp_no_port"} {
		c := checkOf(t, iv, name, -1)
		if c.Status != record.StatusMatch || c.Traced == nil || c.Kernel == nil || *c.Traced != *c.Kernel || *c.Traced == 0 {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if c := checkOf(t, iv, "udp_rcvbuf", -1); !strings.Contains(c.Note, "named from the drop location") {
		t.Errorf("udp_rcvbuf note %q does not say the name came from the location", c.Note)
	}
	if c := checkOf(t, iv, "tcp_listen_overflow", -1); c.Status != record.StatusUnavailable || !strings.Contains(c.Note, "tcp_v4_rcv") {
		t.Errorf("tcp_listen_overflow: %+v", c)
	}
	if len(iv.Ports) != 1 || iv.Ports[0].Reason != "SOCKET_RCVBUFF" || iv.Ports[0].Port != 9000 || iv.Ports[0].Drops != 200 {
		t.Errorf("ports %+v: want SOCKET_RCVBUFF 9000 only", iv.Ports)
	}
	sum := s.summary(t, d)
	if c := checkOf(t, sum, "backlog_drops", -1); c.Status != record.StatusMatch {
		t.Errorf("summary backlog_drops: %+v", c)
	}
}
