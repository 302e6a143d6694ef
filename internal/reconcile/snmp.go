// SPDX-License-Identifier: Apache-2.0

package reconcile

import (
	"fmt"
	"strings"

	"github.com/droptrace/droptrace/internal/record"
)

// Counter names an SNMP counter: group and field as in /proc/net/snmp, netstat and snmp6.
type Counter struct{ Group, Field string }

// SNMPCheck ties traced drops to the per-namespace counters the kernel bumps at the same place.
type SNMPCheck struct {
	Name     string
	Traced   ReasonL4
	Counters []Counter
	// Explain is said when the kernel counted more than was traced.
	Explain string
	// Partial means kfree_skb sees only part of what the counter counts, by design: a count
	// below the kernel's is then a match, and Explain says what cannot be traced.
	Partial bool
}

const (
	protoTCP = 6
	protoUDP = 17
)

// SNMPChecks are the socket-level checks. Sources: net/ipv4/udp.c __udp4_lib_rcv (NoPorts,
// NO_SOCKET) and __udp_queue_rcv_skb (RcvbufErrors, SOCKET_RCVBUFF: both only when the enqueue
// failed with -ENOMEM), their IPv6 twins in net/ipv6/udp.c, and net/ipv4/tcp_minisocks.c
// tcp_check_req for TCP_LISTEN_OVERFLOW, net/ipv4/tcp_input.c tcp_conn_request and
// tcp_rcv_state_process for the SYNs ListenOverflows counts that are consumed, not dropped.
var SNMPChecks = []SNMPCheck{
	{
		Name:     "udp_rcvbuf",
		Traced:   ReasonL4{"SOCKET_RCVBUFF", protoUDP},
		Counters: []Counter{{"Udp", "RcvbufErrors"}, {"Udp6", "RcvbufErrors"}},
		Explain:  "RcvbufErrors also counts datagrams dropped for a full buffer on paths that free them without SOCKET_RCVBUFF (e.g. multicast/broadcast delivery clones)",
	},
	{
		Name:     "udp_no_port",
		Traced:   ReasonL4{"NO_SOCKET", protoUDP},
		Counters: []Counter{{"Udp", "NoPorts"}, {"Udp6", "NoPorts"}},
		Explain:  "NoPorts is counted before the packet is freed; a datagram consumed by another path after the count (e.g. a BPF sk_lookup or early demux quirk) would not be traced as NO_SOCKET",
	},
	{
		Name:     "tcp_listen_overflow",
		Traced:   ReasonL4{"TCP_LISTEN_OVERFLOW", protoTCP},
		Counters: []Counter{{"TcpExt", "ListenOverflows"}},
		Explain:  "ListenOverflows also counts SYNs refused at a full accept queue (tcp_conn_request), which the kernel consumes rather than drops (consume_skb in tcp_rcv_state_process), so no kfree_skb tracer sees them; only handshake ACKs that find the queue full are dropped as TCP_LISTEN_OVERFLOW. The record's listeners show the queues that were full",
		Partial:  true,
	},
}

func snmpCheck(in Input, sc SNMPCheck) record.Check {
	if why, ok := missing(in.Drops); ok {
		return unavailable(sc.Name, nil, why)
	}
	located := in.Located[sc.Traced.Reason]
	if in.Unnamed[sc.Traced.Reason] {
		if located != "" {
			return unavailable(sc.Name, nil, fmt.Sprintf("drops are named from their location on this kernel, and %s; %s", located, counterNames(sc)))
		}
		return unavailable(sc.Name, nil, fmt.Sprintf("this kernel frees no packet as %s (its drop reasons have no such name); %s", sc.Traced.Reason, counterNames(sc)))
	}
	var traced, unwatched uint64
	var kernel int64
	var read, unread, failed []string
	var perNS []string
	for _, ns := range in.Netns {
		t := ns.Traced[sc.Traced]
		if ns.SNMP == nil {
			failed = append(failed, fmt.Sprintf("%s (%s)", nsLabel(ns), ns.Why))
			if t > 0 {
				unwatched += t
				unread = append(unread, failed[len(failed)-1])
			}
			continue
		}
		var k int64
		for _, c := range sc.Counters {
			k += ns.SNMP[c.Group][c.Field]
		}
		traced += t
		kernel += k
		read = append(read, nsLabel(ns))
		if int64(t) != k {
			perNS = append(perNS, fmt.Sprintf("%s traced %d, counted %d", nsLabel(ns), t, k))
		}
	}
	if len(read) == 0 {
		why := "no network namespace's counters could be read"
		if len(failed) > maxFailedNetns {
			failed = append(failed[:maxFailedNetns], fmt.Sprintf("%d more", len(failed)-maxFailedNetns))
		}
		if len(failed) > 0 {
			why += ": " + strings.Join(failed, ", ")
		}
		return unavailable(sc.Name, nil, why)
	}
	chk := record.Check{Check: sc.Name, Traced: i64(traced), Kernel: &kernel}
	var notes []string
	var ku uint64
	if kernel > 0 {
		ku = uint64(kernel)
	}
	g := compare(in, Key{sc.Name, -1}, traced, ku)
	chk.Status = g.status()
	switch {
	case sc.Partial && kernel >= 0 && traced <= ku:
		chk.Status = record.StatusMatch
		if ku > traced {
			notes = append(notes, fmt.Sprintf("%d counted, %d traced as %s: %s", ku, traced, sc.Traced.Reason, sc.Explain))
		}
	case kernel < 0:
		chk.Status = record.StatusMismatch
		notes = append(notes, "a kernel counter went backwards: the namespace was recreated")
	case g.match():
		if n := g.within("counted"); n != "" {
			notes = append(notes, n)
		}
	default:
		if ku > traced {
			// Unseen NET_RX runs are the measured explanation; the kernel's other counting
			// paths are only the fallback when BPF saw everything.
			why := sc.Explain + missHint(in)
			if n, _ := unseenRuns(in); n > 0 {
				why = strings.TrimSuffix(strings.TrimPrefix(missHint(in), " ("), ")")
			}
			notes = append(notes, fmt.Sprintf("%d counted but not traced as %s: %s", ku-traced, sc.Traced.Reason, why))
			chk.ExplainedBy = missCause(in)
		} else {
			notes = append(notes, fmt.Sprintf("%d traced as %s but not counted", traced-ku, sc.Traced.Reason))
		}
		if len(perNS) > 0 && len(perNS) <= 5 {
			notes = append(notes, strings.Join(perNS, "; "))
		}
	}
	if unwatched > 0 {
		notes = append(notes, fmt.Sprintf("%d more traced in namespaces whose counters could not be read: %s", unwatched, strings.Join(unread, ", ")))
	}
	if located != "" {
		notes = append(notes, "traced "+sc.Traced.Reason+" is named from the drop location: "+located)
	}
	chk.Note = strings.Join(notes, "; ")
	return chk
}

// maxFailedNetns bounds the unreadable namespaces a note names, each with its error.
const maxFailedNetns = 5

func nsLabel(ns Netns) string {
	if ns.Name != "" {
		return fmt.Sprintf("netns %d [%s]", ns.Inode, ns.Name)
	}
	return fmt.Sprintf("netns %d", ns.Inode)
}

// counterNames says which kernel counters a check reads, for a check that cannot be traced.
func counterNames(sc SNMPCheck) string {
	var names []string
	for _, c := range sc.Counters {
		names = append(names, c.Group+" "+c.Field)
	}
	return strings.Join(names, " and ") + " still counted (see the record's snmp)"
}
