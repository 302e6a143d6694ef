// SPDX-License-Identifier: Apache-2.0

package assemble

import (
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// ports lists socket-level drops by destination port: the tracer's counts by socket (every
// drop), with the drop events' tally (only with --events) added to the same port. A port
// takes the address that received most of its drops. Sorted, not trimmed; nil when empty.
func ports(socks []tracer.SockCount, events []record.PortDrops, names Names) []record.PortDrops {
	if len(socks) == 0 && len(events) == 0 {
		return nil
	}
	type key struct {
		reason, l4 string
		port       uint16
		netns      uint32
	}
	var out []record.PortDrops
	at := map[key]int{}
	top := map[key]uint64{} // drops of the address named so far
	for _, s := range socks {
		k := key{names.Reason(s.Key.Reason, s.Key.Location), L4Name(s.Key.L3, uint16(s.Key.L4)), s.Key.Port, s.Key.Netns}
		// On a kernel without drop reasons BPF counts every drop of the socket-level
		// functions by socket; only the call sites named as socket-level are listed.
		if !dropreason.IsSocketLevel(k.reason) {
			continue
		}
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, record.PortDrops{Reason: k.reason, L4: k.l4, Port: k.port, Netns: k.netns})
		}
		out[i].Drops = record.AddSat(out[i].Drops, s.Count)
		if s.Key.Addr.IsValid() && s.Count > top[k] {
			out[i].Addr, top[k] = s.Key.Addr.String(), s.Count
		}
	}
	for _, e := range events {
		k := key{e.Reason, e.L4, e.Port, e.Netns}
		if i, ok := at[k]; ok {
			out[i].Events = record.AddSat(out[i].Events, e.Events)
			continue
		}
		at[k] = len(out)
		out = append(out, e)
	}
	record.SortPorts(out)
	return out
}
