// SPDX-License-Identifier: Apache-2.0

package view

import (
	"fmt"
	"net"
	"strconv"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// maxSockets bounds the sockets and listeners shown; the records have ten of each.
const maxSockets = 3

// sockets names the victims: the ports with the most socket-level drops, each with its
// socket's address, memory and holder, and the listeners whose accept queue was full.
func (r *renderer) sockets() {
	ports := r.iv.Ports
	if len(ports) > maxSockets {
		ports = ports[:maxSockets]
	}
	cntW, reasonW := 0, 0
	for _, p := range ports {
		cntW = max(cntW, len(strconv.FormatUint(max(p.Drops, p.Events), 10)))
		reasonW = max(reasonW, textfmt.Width(p.Reason))
	}
	label := "sockets"
	for _, p := range ports {
		at := fmt.Sprintf("%s port %d", p.L4, p.Port)
		if p.Addr != "" {
			at = fmt.Sprintf("%s %s", p.L4, hostPort(p.Addr, p.Port))
		}
		desc := fmt.Sprintf("%s netns %d", at, p.Netns)
		if p.RcvBuf > 0 {
			desc += fmt.Sprintf(", %d of %d B queued", p.Queue, p.RcvBuf)
		}
		desc += holderText(p.Holder)
		n, unit := p.Drops, ""
		if n == 0 {
			n, unit = p.Events, " events"
		}
		r.add(textfmt.Clip(fmt.Sprintf("%s%*d  %-*s  %s%s", textfmt.Label(label), cntW, n, reasonW, p.Reason, desc, unit), r.width))
		label = ""
	}
	for i, l := range r.iv.Listeners {
		if i == maxSockets {
			break
		}
		queue := fmt.Sprintf("accept queue %d", l.AcceptQueue)
		if l.AcceptBacklog != nil {
			queue += fmt.Sprintf("/%d", *l.AcceptBacklog)
		}
		lbl := textfmt.Label("")
		if i == 0 {
			lbl = textfmt.Label("listeners")
		}
		r.add(textfmt.Clip(fmt.Sprintf("%stcp %s netns %d, %s full%s", lbl, hostPort(l.Addr, l.Port), l.Netns, queue, holderText(l.Holder)), r.width))
	}
}

// hostPort joins an address and a port, bracketing an IPv6 address.
func hostPort(addr string, port uint16) string {
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

// holderText is ", pid 4121 (python3) +2 in cgroup /system.slice/x.service" (or "in pod
// default/web-0 container app" on Kubernetes), "" when unknown.
func holderText(h record.Holder) string {
	if h.PID == 0 {
		return ""
	}
	s := fmt.Sprintf(", pid %d (%s)", h.PID, h.Comm)
	if n := len(h.SharedWith); n > 0 {
		s += fmt.Sprintf(" +%d", n)
	}
	if w := h.Where(); w != "" {
		s += " in " + w
	}
	return s
}
