// SPDX-License-Identifier: Apache-2.0

// Package pcapng writes dropped packets as pcapng, the format Wireshark and tshark open: one
// interface block per network namespace, device and link type, nanosecond timestamps, and a
// comment on every packet that says why, where and on which CPU the kernel dropped it
// (docs/pcap.md).
package pcapng

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// Link is where a packet's bytes start.
type Link uint8

const (
	// Ethernet: the bytes start with the Ethernet header (LINKTYPE_ETHERNET).
	Ethernet Link = iota
	// RawIP: the bytes start with the IPv4 or IPv6 header (LINKTYPE_RAW): the packet had no
	// Ethernet header in front of it when it was dropped.
	RawIP
)

func (l Link) linkType() layers.LinkType {
	if l == RawIP {
		return layers.LinkTypeRaw
	}
	return layers.LinkTypeEthernet
}

// Packet is one dropped packet.
type Packet struct {
	Time time.Time
	// Drop says why, where and on which CPU: the comment's reason, location, cpu, netns and
	// ifname, and the interface (netns, ifindex, ifname) the packet is filed under.
	Drop    *record.Drop
	Link    Link
	Data    []byte // the start of the packet, at most the snaplen
	OrigLen uint32 // the packet's length from where Data starts
	// Pod names the interface's network namespace when it is a pod's ("namespace/name").
	Pod string
	// Owner is who holds the socket the packet was for, when known ("comm[pid]").
	Owner string
}

// Rotated is an output rotated by size (rotate.Writer): each record is written whole to one
// file, and a new file starts with header.
type Rotated interface {
	WriteRecord(rec, header []byte) error
}

// MaxInterfaces bounds the interface blocks of a file; the packets of interfaces past it are
// filed under one interface per link type, "other@droptrace".
const MaxInterfaces = 1024

// flushAt is how many bytes of blocks wait before Write writes them.
const flushAt = 256 << 10

// Writer writes packets as pcapng. Blocks are held until Flush, or until enough of them wait.
// It is safe for concurrent use.
type Writer struct {
	out     io.Writer
	rot     Rotated // out as a rotated file; nil when it is not one
	snaplen uint32
	app     string

	mu      sync.Mutex
	buf     bytes.Buffer // what ng writes, one block at a time
	ng      *pcapgo.NgWriter
	header  []byte // the section header and every interface block so far
	ifaces  map[ifaceKey]int
	started bool // the header reached the output: blocks go on after it

	pending []byte
	packets []unit // the packets in pending
	written uint64
	lost    uint64
}

// unit is one packet's blocks in pending: its interface block when it is the interface's
// first packet, and its packet block.
type unit struct {
	end    int // in pending
	header int // len(header) before the packet's interface block, for a rotated file
}

type ifaceKey struct {
	netns, ifindex uint32
	link           Link
}

// New writes pcapng to out, each interface saying snaplen bytes at most were kept; app (e.g.
// "droptrace 1.2") names the writer in the section header. Nothing is written before the
// first packet. When out is a Rotated, each packet's blocks are written whole to one file.
func New(out io.Writer, snaplen uint32, app string) *Writer {
	w := &Writer{out: out, snaplen: snaplen, app: app, ifaces: map[ifaceKey]int{}}
	w.rot, _ = out.(Rotated)
	return w
}

// Write adds p to the blocks waiting to be written, and writes them once enough wait. An
// error is a write that failed: its packets are counted lost (Counts).
func (w *Writer) Write(p *Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	id, hdr, err := w.iface(p)
	if err != nil {
		w.lost++
		return err
	}
	data := p.Data
	if len(data) > int(w.snaplen) {
		data = data[:w.snaplen]
	}
	ci := gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(data),
		Length: max(int(p.OrigLen), len(data)), InterfaceIndex: id}
	if err := w.ng.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: []string{Comment(p)}}); err != nil {
		w.lost++
		return fmt.Errorf("pcapng packet block: %w", err)
	}
	w.take()
	w.packets = append(w.packets, unit{end: len(w.pending), header: hdr})
	if len(w.pending) >= flushAt {
		return w.flush()
	}
	return nil
}

// iface returns the interface block index of p's interface, adding the block when it is new,
// and the header's length before it.
func (w *Writer) iface(p *Packet) (id, hdr int, err error) {
	d := p.Drop
	k := ifaceKey{d.Netns, d.Ifindex, p.Link}
	if id, ok := w.ifaces[k]; ok {
		return id, len(w.header), nil
	}
	name := interfaceName(d.Ifname, d.Ifindex, d.Netns, p.Pod)
	if len(w.ifaces) >= MaxInterfaces {
		k = ifaceKey{0, 0, p.Link}
		if id, ok := w.ifaces[k]; ok {
			return id, len(w.header), nil
		}
		name = "other@droptrace"
	}
	intf := pcapgo.NgInterface{Name: name, LinkType: p.Link.linkType(), SnapLength: w.snaplen,
		TimestampResolution: 9, Description: fmt.Sprintf("netns %d ifindex %d", d.Netns, d.Ifindex)}
	hdr = len(w.header)
	if w.ng == nil {
		w.ng, err = pcapgo.NewNgWriterInterface(&w.buf, intf, pcapgo.NgWriterOptions{
			SectionInfo: pcapgo.NgSectionInfo{Application: w.app, OS: "Linux"}})
		id = 0
	} else {
		id, err = w.ng.AddInterface(intf)
	}
	if err == nil {
		err = w.ng.Flush()
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pcapng interface block: %w", err)
	}
	w.header = append(w.header, w.buf.Bytes()...)
	w.take()
	w.ifaces[k] = id
	return id, hdr, nil
}

// take moves what ng wrote into pending.
func (w *Writer) take() {
	w.ng.Flush() // into w.buf, which does not fail
	w.pending = append(w.pending, w.buf.Bytes()...)
	w.buf.Reset()
}

// Flush writes the blocks waiting. Packets that could not be written are counted lost and not
// tried again.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.packets) == 0 {
		return nil
	}
	defer func() { w.pending, w.packets = w.pending[:0], w.packets[:0] }()
	if w.rot != nil {
		return w.flushRotated()
	}
	// Until a write has reached the output, the blocks of packets lost before go first: the
	// section header and the interface blocks that came with them.
	lead := 0
	b := w.pending
	if !w.started {
		lead = w.packets[0].header
		b = append(w.header[:lead:lead], b...)
	}
	n, err := w.out.Write(b)
	if n > 0 {
		w.started = true
	}
	var done uint64
	for _, u := range w.packets {
		if lead+u.end <= n {
			done++
		}
	}
	w.written += done
	w.lost += uint64(len(w.packets)) - done
	if err != nil {
		return fmt.Errorf("write pcapng: %w", err)
	}
	return nil
}

// flushRotated writes each packet's blocks as one record, so that a rotation falls between
// packets and every file starts with the section header and the interface blocks.
func (w *Writer) flushRotated() error {
	var first error
	start := 0
	for _, u := range w.packets {
		rec := w.pending[start:u.end]
		start = u.end
		if !w.started {
			rec = append(w.header[:u.header:u.header], rec...)
		}
		if err := w.rot.WriteRecord(rec, w.header[:u.header]); err != nil {
			w.lost++
			if first == nil {
				first = fmt.Errorf("write pcapng: %w", err)
			}
			continue
		}
		w.started = true
		w.written++
	}
	return first
}

// Counts are the packets written and those lost so far.
func (w *Writer) Counts() (written, lost uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written, w.lost
}

// interfaceName names an interface block: "eth0@netns 4026531840", "eth0@pod default/web-0"
// when the namespace is a pod's, "if7@netns ..." when the device's name is unknown.
func interfaceName(ifname string, ifindex, netns uint32, pod string) string {
	if ifname == "" {
		ifname = "if" + strconv.FormatUint(uint64(ifindex), 10)
	}
	where := "netns " + strconv.FormatUint(uint64(netns), 10)
	if pod != "" {
		where = "pod " + pod
	}
	return textfmt.Terminal(ifname + "@" + where)
}

// Comment is a packet's comment: "reason=NO_SOCKET location=__udp4_lib_rcv+0x5e3 cpu=1
// netns=4026531840 ifname=lo", then "owner=nc[4242]" when the socket's holder is known. A
// value that is empty or holds anything but printable ASCII without a space, a quote, an
// equals sign or a backslash is quoted as a Go string with ASCII escapes.
func Comment(p *Packet) string {
	d := p.Drop
	var b strings.Builder
	b.Grow(128)
	field(&b, "reason", d.Reason)
	field(&b, "location", d.Location)
	field(&b, "cpu", strconv.FormatUint(uint64(d.CPU), 10))
	field(&b, "netns", strconv.FormatUint(uint64(d.Netns), 10))
	field(&b, "ifname", d.Ifname)
	if p.Owner != "" {
		field(&b, "owner", p.Owner)
	}
	return b.String()
}

func field(b *strings.Builder, key, v string) {
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(key)
	b.WriteByte('=')
	if plain(v) {
		b.WriteString(v)
	} else {
		// ASCII only: a name from the host can then neither drive the terminal tshark
		// prints to nor hide characters.
		b.WriteString(strconv.QuoteToASCII(v))
	}
}

// plain says whether v is written as it is: printable ASCII with no space, quote, equals
// sign or backslash, which a reader would take for the quoting.
func plain(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\' {
			return false
		}
	}
	return true
}
