// SPDX-License-Identifier: Apache-2.0

package explain

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// socketRcvbuf reports datagrams dropped because their socket's receive buffer was full.
func (e *explainer) socketRcvbuf() {
	n := e.iv.Drops["SOCKET_RCVBUFF"]
	if n == 0 {
		return
	}
	// Relative to everything the host received: Udp InDatagrams counts only datagrams an
	// application has read (udp_recvmsg), so it is no denominator for a socket nobody reads.
	var received uint64
	for _, c := range e.iv.CPUs {
		if c.Softnet != nil {
			received = record.AddSat(received, c.Softnet.Processed)
		}
	}
	ev := map[string]any{"drops": n, "drops_per_sec": e.perSec(n), "packets_received": received,
		"dropped_pct": pct(n, received), "udp_in_datagrams": record.AddSatInt(e.iv.SNMP["Udp"]["InDatagrams"], e.iv.SNMP["Udp6"]["InDatagrams"])}
	share := ""
	if received > 0 {
		share = fmt.Sprintf(" (%.2f%% of the packets this host received)", pct(n, received))
	}
	var ports []string
	for _, p := range e.iv.Ports {
		if p.Reason == "SOCKET_RCVBUFF" && len(ports) < 3 {
			ports = append(ports, portDesc(p))
		}
	}
	if len(ports) > 0 {
		share += ", mostly to " + strings.Join(ports, ", ")
		ev["ports"] = strings.Join(ports, ", ")
	}
	fix := "make the receiving application read faster (more threads, recvmmsg, SO_REUSEPORT); give the socket a larger buffer with setsockopt SO_RCVBUF, allowed up to net.core.rmem_max" + e.rmemNow() +
		" (`ss -lump` shows each socket's buffer and drops)"
	// Past udp_mem's pressure threshold the kernel refuses to grow any UDP socket's memory:
	// then the host, not one application, is the limit (net/ipv4/udp.c __udp_enqueue_schedule_skb).
	if mem, pressure, ok := e.udpMemPressure(); ok {
		ev["udp_mem_pages"], ev["udp_mem_pressure_pages"] = mem, pressure
		if mem >= pressure {
			share += fmt.Sprintf("; UDP memory is under pressure host-wide (%d pages in use, udp_mem pressure at %d)", mem, pressure)
			fix = fmt.Sprintf("raise net.ipv4.udp_mem (pressure threshold %d pages now) or find the sockets holding memory (`ss -uam`); then ", pressure) + fix
		}
	}
	e.out = append(e.out, record.Verdict{
		ID: SocketRcvbuf, Severity: severity(float64(n) / float64(max(received, n))), Evidence: ev,
		Cause:      fmt.Sprintf("%d datagrams%s found their socket's receive buffer full: the application reads more slowly than they arrive", n, share),
		Fix:        fix,
		Confidence: e.confidence("udp_rcvbuf"),
	})
}

// rmemNow says the current socket buffer limits, from the start record's context.
func (e *explainer) rmemNow() string {
	const ask = " (`sysctl net.core.rmem_max net.core.rmem_default` shows the limits)"
	if e.start == nil || e.start.Context == nil {
		return ask
	}
	sc := e.start.Context.Sysctls
	if sc["rmem_max"] == "" {
		return ask
	}
	return fmt.Sprintf(" (now rmem_max=%s, rmem_default=%s)", sc["rmem_max"], sc["rmem_default"])
}

// udpMemPressure compares UDP's pages in use with udp_mem's pressure threshold (its second
// value).
func (e *explainer) udpMemPressure() (mem, pressure int64, ok bool) {
	if e.start == nil || e.start.Context == nil || e.iv.Sockstat == nil {
		return 0, 0, false
	}
	f := strings.Fields(e.start.Context.Sysctls["udp_mem"])
	if len(f) != 3 {
		return 0, 0, false
	}
	if _, err := fmt.Sscan(f[1], &pressure); err != nil {
		return 0, 0, false
	}
	m, ok := e.iv.Sockstat["UDP"]["mem"]
	return m, pressure, ok
}

// listenOverflow reports a listener whose accept queue overflowed, traced or only counted.
func (e *explainer) listenOverflow() {
	traced := e.iv.Drops["TCP_LISTEN_OVERFLOW"]
	counted := e.iv.SNMP["TcpExt"]["ListenOverflows"]
	if traced == 0 && counted <= 0 {
		return
	}
	ev := map[string]any{"traced": traced, "listen_overflows": counted, "listen_drops": e.iv.SNMP["TcpExt"]["ListenDrops"]}
	cause := "a listening socket's accept queue was full: connections were refused or their handshakes dropped while the application did not accept them fast enough"
	var full []string
	for _, l := range e.iv.Listeners {
		if len(full) < 3 {
			full = append(full, listenerDesc(l))
		}
	}
	if len(full) > 0 {
		cause += ": " + strings.Join(full, ", ")
		ev["listeners"] = strings.Join(full, ", ")
	}
	e.out = append(e.out, record.Verdict{
		ID: ListenOverflow, Severity: record.SeverityWarning,
		Evidence: ev,
		Cause:    cause,
		Fix: "accept faster in the application; raise its listen() backlog and net.core.somaxconn (which caps it); " +
			"`ss -ltn` shows Recv-Q (queued) against Send-Q (backlog) per listener",
		Confidence: e.confidence("tcp_listen_overflow"),
	})
}

// simple is a verdict that only reports a reason's count and rate.
func (e *explainer) simple(id, reason, cause, fix string) {
	n := e.iv.Drops[reason]
	if n == 0 {
		return
	}
	var where []string
	for _, l := range e.iv.Locations {
		if l.Reason == reason && len(where) < 3 {
			where = append(where, l.Location)
		}
	}
	ev := map[string]any{"drops": n, "drops_per_sec": e.perSec(n)}
	if len(where) > 0 {
		ev["locations"] = strings.Join(where, ", ")
	}
	e.out = append(e.out, record.Verdict{
		ID: id, Severity: record.SeverityInfo, Evidence: ev,
		Cause: fmt.Sprintf("%d drops: %s", n, cause), Fix: fix, Confidence: record.ConfidenceHigh,
	})
}

// portDesc names a port that took socket-level drops, with what is known of its socket: the
// address, how many drops (counted by socket) and drop events, its memory and its holders.
func portDesc(p record.PortDrops) string {
	where := fmt.Sprintf("%s port %d", p.L4, p.Port)
	if p.Addr != "" {
		where += " on " + p.Addr
	}
	where += fmt.Sprintf(" in netns %d", p.Netns)
	var about []string
	if p.Drops > 0 {
		about = append(about, fmt.Sprintf("%d drops", p.Drops))
	}
	if p.Events > 0 || p.Drops == 0 {
		about = append(about, fmt.Sprintf("%d events", p.Events))
	}
	if p.RcvBuf > 0 {
		about = append(about, fmt.Sprintf("receive buffer %d bytes effective, %d queued", p.RcvBuf, p.Queue))
	}
	if h := holderDesc(p.Holder); h != "" {
		about = append(about, "socket of "+h)
	}
	return where + " (" + strings.Join(about, "; ") + ")"
}

// listenerDesc names a listener whose accept queue was full.
func listenerDesc(l record.Listener) string {
	at := fmt.Sprintf("%s:%d", l.Addr, l.Port) // a recording's address may not parse
	if a, err := netip.ParseAddr(l.Addr); err == nil {
		at = netip.AddrPortFrom(a, l.Port).String()
	}
	d := fmt.Sprintf("tcp %s in netns %d, accept queue %d", at, l.Netns, l.AcceptQueue)
	if l.AcceptBacklog != nil {
		d += fmt.Sprintf("/%d", *l.AcceptBacklog)
	}
	if h := holderDesc(l.Holder); h != "" {
		d += ", held by " + h
	}
	return d
}

// holderDesc is "pid 4121 (python3) in cgroup /x and 3 other processes", "" when unknown.
func holderDesc(h record.Holder) string {
	if h.PID == 0 {
		return ""
	}
	d := fmt.Sprintf("pid %d (%s)", h.PID, h.Comm)
	if w := h.Where(); w != "" {
		d += " in " + w
	}
	switch n := len(h.SharedWith); n {
	case 0:
	case 1:
		d += fmt.Sprintf(" and pid %d", h.SharedWith[0])
	default:
		d += fmt.Sprintf(" and %d other processes", n)
	}
	return d
}
