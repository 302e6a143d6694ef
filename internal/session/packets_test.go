// SPDX-License-Identifier: Apache-2.0

package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pcapng"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// packetSink keeps what it is given; it loses the packets it is told to.
type packetSink struct {
	got           []pcapng.Packet
	comments      []string
	written, lost uint64
	fail          bool
}

func (s *packetSink) Write(p *pcapng.Packet) error {
	q := *p
	d := *p.Drop
	q.Drop, q.Data = &d, bytes.Clone(p.Data)
	s.got = append(s.got, q)
	s.comments = append(s.comments, pcapng.Comment(p))
	if s.fail {
		s.lost++
		return errors.New("full")
	}
	s.written++
	return nil
}

func (s *packetSink) Flush() error                   { return nil }
func (s *packetSink) Counts() (written, lost uint64) { return s.written, s.lost }

// Each event's packet goes to the packet sink with its drop record, filed under the pod of its
// namespace and with the holder of its socket once an interval has named them; an event counts
// written only when both outputs took it.
func TestEventsGoToPacketsAndRecords(t *testing.T) {
	names := assemble.Names{Reason: func(code uint32, _ uint64) string { return map[uint32]string{2: "NO_SOCKET"}[code] },
		Location: func(a uint64) string { return fmt.Sprintf("f+0x%x", a) }}
	var jsonl bytes.Buffer
	rw := record.NewWriter(&jsonl)
	w := newEventWriter(rw, names, &enrich.Ifnames{})
	ps := &packetSink{}
	w.packets = ps
	e := tracer.Event{MonoNs: 1, Location: 0x10, Reason: 2, Netns: 7, Ifindex: 3, CPU: 1, L3: tracer.EthIPv4, L4: 17,
		Dport: 53, Ifname: "eth0", Link: tracer.LinkIP, Packet: []byte{0x45, 0}, OrigLen: 40}
	w.write(&e)
	w.learn([]record.PortDrops{{Reason: "NO_SOCKET", L4: "udp", Port: 53, Netns: 7, Holder: record.Holder{PID: 42, Comm: "dns"}}},
		[]netns.NS{{Inode: 7, Name: "pod default/web-0"}})
	e.Link = tracer.LinkEthernet
	w.write(&e)
	rw.Flush()
	if len(ps.got) != 2 {
		t.Fatalf("%d packets, want 2", len(ps.got))
	}
	first, second := ps.got[0], ps.got[1]
	if first.Link != pcapng.RawIP || first.OrigLen != 40 || !bytes.Equal(first.Data, []byte{0x45, 0}) || first.Pod != "" || first.Owner != "" {
		t.Errorf("first packet %+v: want raw IP, 2 of 40 bytes, no pod or owner yet", first)
	}
	if second.Link != pcapng.Ethernet || second.Pod != "default/web-0" || second.Owner != "dns[42]" {
		t.Errorf("second packet %+v: want Ethernet in pod default/web-0, owner dns[42]", second)
	}
	if want := "reason=NO_SOCKET location=f+0x10 cpu=1 netns=7 ifname=eth0 owner=dns[42]"; ps.comments[1] != want {
		t.Errorf("comment %q, want %q", ps.comments[1], want)
	}
	if !first.Time.Equal(w.mono(1)) {
		t.Errorf("packet time %s, want the drop record's %s", first.Time, w.mono(1))
	}
	if written, failed := w.writeCounts(); written != 2 || failed != 0 {
		t.Errorf("counts %d written, %d failed; want 2, 0", written, failed)
	}
	ps.fail = true
	w.write(&e)
	rw.Flush()
	if written, failed := w.writeCounts(); written != 0 || failed != 1 {
		t.Errorf("a packet lost, its record written: counts %d written, %d failed; want 0, 1", written, failed)
	}
}

// A long session goes on naming: holders past the bound replace the ones learnt before, and a
// namespace's pod is that of the latest listing.
func TestPacketNamesFollowTheSession(t *testing.T) {
	names := assemble.Names{Reason: func(uint32, uint64) string { return "NO_SOCKET" }, Location: func(uint64) string { return "f" }}
	w := newEventWriter(record.NewWriter(&bytes.Buffer{}), names, &enrich.Ifnames{})
	ps := &packetSink{}
	w.packets = ps
	port := func(p int) record.PortDrops {
		return record.PortDrops{Reason: "NO_SOCKET", L4: "udp", Port: uint16(p), Netns: 7, Holder: record.Holder{PID: p, Comm: "app"}}
	}
	var ports []record.PortDrops
	for p := 1; p <= maxPorts; p++ {
		ports = append(ports, port(p))
	}
	w.learn(ports, []netns.NS{{Inode: 7, Name: "pod default/a"}})
	w.learn([]record.PortDrops{port(maxPorts + 1)}, []netns.NS{{Inode: 7, Name: "pod default/b"}})
	e := tracer.Event{Reason: 2, Netns: 7, L3: tracer.EthIPv4, L4: 17, Dport: maxPorts + 1}
	w.write(&e)
	if got := ps.got[0]; got.Owner != fmt.Sprintf("app[%d]", maxPorts+1) || got.Pod != "default/b" {
		t.Errorf("packet named %q in pod %q, want app[%d] in default/b", got.Owner, got.Pod, maxPorts+1)
	}
}
