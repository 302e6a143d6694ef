// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// readPcapLibrary reads a capture as readPcap does, with the pcapng library: where tshark
// cannot run (the kernel tests' initramfs), the packets the kernel's BPF copied are still
// decoded and checked. Protocols are named as tshark's frame.protocols names them, as far as
// the tests look.
func readPcapLibrary(t *testing.T, file string) []packetRow {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Captures mix link types (Ethernet, raw IP): the reader would skip all but the first's.
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	var rows []packetRow
	for i := 0; ; i++ {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			t.Fatalf("read %s, packet %d: %v", file, i+1, err)
		}
		intf, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			t.Fatalf("packet %d: interface %d: %v", i+1, ci.InterfaceIndex, err)
		}
		row := packetRow{iface: intf.Name, comment: strings.Join(opts.Comments, "\n")}
		row.reason = commentReason(t, i, row.comment)
		first, proto := layers.LayerTypeEthernet, []string{"eth", "ethertype"}
		if intf.LinkType != layers.LinkTypeEthernet {
			first, proto = layers.LayerTypeIPv4, []string{"raw"}
			if len(data) > 0 && data[0]>>4 == 6 {
				first = layers.LayerTypeIPv6
			}
		}
		p := gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: false, NoCopy: true})
		if fail := p.ErrorLayer(); fail != nil && !truncatedPayload(p) {
			t.Errorf("packet %d does not decode: %v", i+1, fail.Error())
		}
		if ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			row.ipDst, proto = ip.DstIP.String(), append(proto, "ip")
		}
		if ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); ok {
			row.ip6Dst, proto = ip.DstIP.String(), append(proto, "ipv6")
		}
		if udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			row.dport, proto = int(udp.DstPort), append(proto, "udp")
		}
		row.protocols = strings.Join(proto, ":")
		rows = append(rows, row)
	}
}

// truncatedPayload says whether a decode failure is only the snap length cutting the packet
// after its UDP header, which tshark shows without calling the packet malformed.
func truncatedPayload(p gopacket.Packet) bool {
	return p.Metadata().Truncated && p.Layer(layers.LayerTypeUDP) != nil
}
