// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// ParseSockstat reads /proc/net/sockstat or sockstat6: "UDP: inuse 3 mem 12" lines of
// name/value pairs. mem is in pages; the kernel compares it with net.ipv4.udp_mem/tcp_mem.
func ParseSockstat(r io.Reader) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	sc := fieldscan.New(r)
	for sc.Scan() {
		line := sc.Line()
		group, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("sockstat line %d: want \"GROUP: name value ...\", got %q", line, sc.Text())
		}
		f := strings.Fields(rest)
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("sockstat line %d: %s has an odd number of fields", line, group)
		}
		m := map[string]int64{}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("sockstat line %d: %s %s = %q: not a number", line, group, f[i], f[i+1])
			}
			m[f[i]] = v
		}
		out[group] = m
	}
	return out, sc.Err()
}

// McastAddr is one line of /proc/net/dev_mcast: a link-layer multicast address an interface
// listens to. The file has no counters at all, only memberships.
type McastAddr struct {
	Ifindex int
	Ifname  string
	Users   int
	Addr    string
}

// ParseDevMcast reads /proc/net/dev_mcast ("4 eth0 1 0 01005e000001").
func ParseDevMcast(r io.Reader) ([]McastAddr, error) {
	var out []McastAddr
	sc := fieldscan.New(r)
	for sc.Scan() {
		line, f := sc.Line(), sc.Fields()
		if len(f) != 5 {
			return nil, fmt.Errorf("dev_mcast line %d: %d fields, want 5 (ifindex name users global address)", line, len(f))
		}
		idx, err1 := strconv.Atoi(f[0])
		users, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("dev_mcast line %d: ifindex %q or users %q is not a number", line, f[0], f[2])
		}
		out = append(out, McastAddr{Ifindex: idx, Ifname: f[1], Users: users, Addr: f[4]})
	}
	return out, sc.Err()
}

// McastChanges says which memberships appeared and disappeared between two reads, as
// "eth0 joined 01005e0000fb" / "eth0 left ...".
func McastChanges(prev, cur []McastAddr) []string {
	key := func(a McastAddr) string { return a.Ifname + " " + a.Addr }
	p, c := map[string]bool{}, map[string]bool{}
	for _, a := range prev {
		p[key(a)] = true
	}
	var out []string
	for _, a := range cur {
		c[key(a)] = true
		if !p[key(a)] {
			out = append(out, a.Ifname+" joined "+a.Addr)
		}
	}
	for _, a := range prev {
		if !c[key(a)] {
			out = append(out, a.Ifname+" left "+a.Addr)
		}
	}
	return out
}
