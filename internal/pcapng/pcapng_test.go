// SPDX-License-Identifier: Apache-2.0

package pcapng

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/droptrace/droptrace/internal/record"
)

// readBack reads a pcapng file as Wireshark would: every packet with its interface and
// comment.
type readPacket struct {
	data    []byte
	length  int
	ts      time.Time
	iface   pcapgo.NgInterface
	comment string
}

func readBack(t *testing.T, b []byte) []readPacket {
	t.Helper()
	r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatalf("read pcapng: %v", err)
	}
	var out []readPacket
	for {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(out), err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatal(err)
		}
		p := readPacket{data: data, length: ci.Length, ts: ci.Timestamp, iface: intf}
		if len(opts.Comments) == 1 {
			p.comment = opts.Comments[0]
		}
		out = append(out, p)
	}
}

func drop(reason string, netns, ifindex uint32, ifname string) *record.Drop {
	return &record.Drop{Reason: reason, Location: "__udp4_lib_rcv+0x5e3", CPU: 3, Netns: netns, Ifindex: ifindex, Ifname: ifname}
}

var t0 = time.Date(2026, 12, 1, 19, 0, 0, 123456789, time.UTC)

func TestWriteReadBack(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 128, "droptrace test")
	eth := bytes.Repeat([]byte{0xab}, 200)
	pkts := []Packet{
		{Time: t0, Drop: drop("NO_SOCKET", 4026531840, 1, "lo"), Link: Ethernet, Data: eth, OrigLen: 1514},
		{Time: t0.Add(time.Nanosecond), Drop: drop("CPU_BACKLOG", 4026532001, 7, "veth0"), Link: Ethernet, Data: eth[:60], OrigLen: 60, Pod: "default/web-0"},
		{Time: t0.Add(2), Drop: drop("NO_SOCKET", 4026531840, 1, "lo"), Link: Ethernet, Data: eth[:42], OrigLen: 42, Owner: "dns[42]"},
		{Time: t0.Add(3), Drop: drop("NETFILTER_DROP", 4026531840, 1, "lo"), Link: RawIP, Data: []byte{0x45, 0, 0, 20}, OrigLen: 20},
		{Time: t0.Add(4), Drop: drop("NO_SOCKET", 4026531840, 0, ""), Link: RawIP, Data: []byte{0x60}, OrigLen: 48},
	}
	for i := range pkts {
		if err := w.Write(&pkts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() != 0 {
		t.Errorf("%d bytes written before Flush", out.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, out.Bytes())
	if len(got) != len(pkts) {
		t.Fatalf("read %d packets, wrote %d", len(got), len(pkts))
	}
	want := []struct {
		name    string
		link    layers.LinkType
		caplen  int
		comment string
	}{
		{"lo@netns 4026531840", layers.LinkTypeEthernet, 128, "reason=NO_SOCKET location=__udp4_lib_rcv+0x5e3 cpu=3 netns=4026531840 ifname=lo"},
		{"veth0@pod default/web-0", layers.LinkTypeEthernet, 60, "reason=CPU_BACKLOG location=__udp4_lib_rcv+0x5e3 cpu=3 netns=4026532001 ifname=veth0"},
		{"lo@netns 4026531840", layers.LinkTypeEthernet, 42, "reason=NO_SOCKET location=__udp4_lib_rcv+0x5e3 cpu=3 netns=4026531840 ifname=lo owner=dns[42]"},
		{"lo@netns 4026531840", layers.LinkTypeRaw, 4, "reason=NETFILTER_DROP location=__udp4_lib_rcv+0x5e3 cpu=3 netns=4026531840 ifname=lo"},
		{"if0@netns 4026531840", layers.LinkTypeRaw, 1, `reason=NO_SOCKET location=__udp4_lib_rcv+0x5e3 cpu=3 netns=4026531840 ifname=""`},
	}
	for i, p := range got {
		wt := want[i]
		if p.iface.Name != wt.name || p.iface.LinkType != wt.link || len(p.data) != wt.caplen ||
			p.length != int(pkts[i].OrigLen) || p.comment != wt.comment || !p.ts.Equal(pkts[i].Time) {
			t.Errorf("packet %d: interface %q link %d, %d of %d bytes at %s, comment %q\nwant %q link %d, %d of %d bytes at %s, comment %q",
				i, p.iface.Name, p.iface.LinkType, len(p.data), p.length, p.ts.Format(time.RFC3339Nano), p.comment,
				wt.name, wt.link, wt.caplen, pkts[i].OrigLen, pkts[i].Time.Format(time.RFC3339Nano), wt.comment)
		}
		if p.iface.SnapLength != 128 {
			t.Errorf("packet %d: interface snaplen %d, want 128", i, p.iface.SnapLength)
		}
	}
	if written, lost := w.Counts(); written != 5 || lost != 0 {
		t.Errorf("counts: %d written, %d lost; want 5, 0", written, lost)
	}
}

// A name from the host can neither drive a terminal nor fake a field of the comment.
func TestCommentQuotes(t *testing.T) {
	d := drop("NO_SOCKET", 1, 2, "x\x1b[2J")
	d.Location = "nf_hook_slow+0x1 [nf_tables]"
	got := Comment(&Packet{Drop: d, Owner: "evil reason=CPU_BACKLOG"})
	want := `reason=NO_SOCKET location="nf_hook_slow+0x1 [nf_tables]" cpu=3 netns=1 ifname="x\x1b[2J" owner="evil reason=CPU_BACKLOG"`
	if got != want {
		t.Errorf("comment\n%s\nwant\n%s", got, want)
	}
}

// failing fails its writes while fail is set; a write that fails writes nothing.
type failing struct {
	bytes.Buffer
	fail bool
}

var errFull = errors.New("no space left on device")

func (f *failing) Write(p []byte) (int, error) {
	if f.fail {
		return 0, errFull
	}
	return f.Buffer.Write(p)
}

// Packets whose write failed are counted lost, and the file that goes on is still readable:
// the section header and interface blocks lost with them are written again first.
func TestFailedWritesAreCountedAndTheFileStaysReadable(t *testing.T) {
	out := &failing{fail: true}
	w := New(out, 64, "droptrace test")
	write := func(reason string, ifindex uint32) {
		t.Helper()
		if err := w.Write(&Packet{Time: t0, Drop: drop(reason, 1, ifindex, "eth0"), Data: make([]byte, 60), OrigLen: 60}); err != nil {
			t.Fatal(err)
		}
	}
	write("NO_SOCKET", 1)
	write("NO_SOCKET", 2)
	if err := w.Flush(); !errors.Is(err, errFull) {
		t.Fatalf("flush to a full disk: %v, want %v", err, errFull)
	}
	out.fail = false
	write("CPU_BACKLOG", 2)
	write("CPU_BACKLOG", 3)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if written, lost := w.Counts(); written != 2 || lost != 2 {
		t.Errorf("counts: %d written, %d lost; want 2, 2", written, lost)
	}
	got := readBack(t, out.Bytes())
	if len(got) != 2 || got[0].iface.Name != "eth0@netns 1" || got[1].comment[:18] != "reason=CPU_BACKLOG" {
		t.Errorf("read back %+v", got)
	}
}

// records is a Rotated that starts a new file every two records.
type records struct {
	files [][]byte
	n     int
}

func (r *records) Write(p []byte) (int, error) { panic("a rotated output is written by record") }

func (r *records) WriteRecord(rec, header []byte) error {
	if len(r.files) == 0 || r.n == 2 {
		if len(r.files) > 0 {
			r.files = append(r.files, append([]byte(nil), header...))
		} else {
			r.files = append(r.files, nil)
		}
		r.n = 0
	}
	r.files[len(r.files)-1] = append(r.files[len(r.files)-1], rec...)
	r.n++
	return nil
}

// A rotated output gets each packet as one record, and every file reads on its own with the
// interfaces of the packets in it.
func TestRotatedFilesReadOnTheirOwn(t *testing.T) {
	out := &records{}
	w := New(out, 128, "droptrace test")
	for i := range 5 {
		ifindex := uint32(i%3 + 1)
		if err := w.Write(&Packet{Time: t0, Drop: drop("NO_SOCKET", 1, ifindex, ""), Data: []byte{byte(i)}, OrigLen: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(out.files) != 3 {
		t.Fatalf("%d files, want 3", len(out.files))
	}
	i := 0
	for f, b := range out.files {
		for _, p := range readBack(t, b) {
			if p.data[0] != byte(i) || p.iface.Name != "if"+string(rune('1'+i%3))+"@netns 1" {
				t.Errorf("file %d: packet %d on %q, want packet %d on if%d", f, p.data[0], p.iface.Name, i, i%3+1)
			}
			i++
		}
	}
	if i != 5 {
		t.Errorf("read %d packets back, wrote 5", i)
	}
}

func BenchmarkWrite(b *testing.B) {
	w := New(io.Discard, 128, "droptrace bench")
	p := Packet{Time: t0, Drop: drop("NO_SOCKET", 4026531840, 1, "lo"), Data: make([]byte, 128), OrigLen: 1514}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(&p); err != nil {
			b.Fatal(err)
		}
	}
}

// Past MaxInterfaces, packets are filed under one interface per link type: the file's
// interface blocks stay bounded however many devices drop.
func TestInterfacesAreBounded(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 64, "droptrace test")
	for i := range MaxInterfaces + 5 {
		if err := w.Write(&Packet{Time: t0, Drop: drop("NO_SOCKET", 1, uint32(i+1), ""), Data: []byte{1}, OrigLen: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := readBack(t, out.Bytes())
	if len(got) != MaxInterfaces+5 {
		t.Fatalf("read %d packets back, wrote %d", len(got), MaxInterfaces+5)
	}
	if last := got[len(got)-1].iface.Name; last != "other@droptrace" || got[MaxInterfaces-1].iface.Name != fmt.Sprintf("if%d@netns 1", MaxInterfaces) {
		t.Errorf("interface of packet %d %q, of the last %q; want if%d@netns 1 and other@droptrace", MaxInterfaces, got[MaxInterfaces-1].iface.Name, last, MaxInterfaces)
	}
}
