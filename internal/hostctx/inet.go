// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/fieldscan"
)

// InetSocket is one line of /proc/net/udp, udp6, tcp or tcp6 (net/ipv4/udp.c
// udp4_format_sock, net/ipv4/tcp_ipv4.c get_tcp4_sock and their IPv6 twins).
type InetSocket struct {
	Local netip.AddrPort
	State uint8 // TCP_* of include/net/tcp_states.h: 0x0A is LISTEN, 0x07 CLOSE (an unconnected UDP socket)
	// TxQueue and RxQueue are, for a TCP listener, the accept queue's limit (the listen()
	// backlog, capped by net.core.somaxconn) and its length; otherwise bytes to send and
	// bytes waiting to be read (sk_rmem_alloc for UDP).
	TxQueue, RxQueue uint64
	UID              uint32
	Inode            uint64
	Drops            uint64 // UDP only: the socket's own drop counter (sk_drops)
}

// StateListen is TCP_LISTEN.
const StateListen = 0x0A

// AcceptQueueFull says whether a listener refuses new connections: the kernel's test is
// sk_acceptq_is_full, a queue longer than its limit (include/net/sock.h).
func (s InetSocket) AcceptQueueFull() bool { return s.State == StateListen && s.RxQueue > s.TxQueue }

// ParseProcNetInet reads /proc/net/udp, udp6, tcp or tcp6: a header, then
// "sl local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..." with, for UDP,
// the drop counter as the 13th field.
func ParseProcNetInet(r io.Reader) ([]InetSocket, error) {
	var out []InetSocket
	sc := fieldscan.New(r)
	for sc.Scan() {
		line, f := sc.Line(), sc.Fields()
		if line == 1 {
			continue // the header
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("socket table line %d: %d fields, want at least 10", line, len(f))
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("socket table line %d: local address: %w", line, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("socket table line %d: state %q is not hex", line, f[3])
		}
		txq, rxq, _ := strings.Cut(f[4], ":")
		tx, err1 := strconv.ParseUint(txq, 16, 64)
		rx, err2 := strconv.ParseUint(rxq, 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("socket table line %d: queues %q are not hex tx:rx", line, f[4])
		}
		uid, err := strconv.ParseUint(f[7], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("socket table line %d: uid %q is not a number", line, f[7])
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("socket table line %d: inode %q is not a number", line, f[9])
		}
		s := InetSocket{Local: local, State: uint8(st), TxQueue: tx, RxQueue: rx, UID: uint32(uid), Inode: inode}
		// UDP's 13th field is the drop counter; TCP's is the retransmit timeout.
		if len(f) == 13 {
			if s.Drops, err = strconv.ParseUint(f[12], 10, 64); err != nil {
				return nil, fmt.Errorf("socket table line %d: drops %q is not a number", line, f[12])
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// parseHexAddrPort reads "0100007F:1F90" or the 32-digit IPv6 form: the address as the
// kernel's 32-bit words, each printed as a number in host byte order (%08X), then the port.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || (len(a) != 8 && len(a) != 32) {
		return netip.AddrPort{}, fmt.Errorf("%q: want hex ADDRESS:PORT", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: want hex ADDRESS:PORT", s)
	}
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr := netip.AddrFrom16(b)
	if len(raw) == 4 {
		addr = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}
