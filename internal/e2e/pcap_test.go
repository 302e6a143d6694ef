// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/rotate"
)

// pcapReaderEnv, set to "go" (as the kernel tests' guests do: their initramfs has no tshark),
// reads captures with the pcapng library instead of tshark, said in each test's log.
const pcapReaderEnv = "DROPTRACE_E2E_PCAP_READER"

// tshark is the path of tshark, or "" where pcapReaderEnv asks for the library reader. CI
// installs tshark (.ci/run), so there ($CI set) a missing tshark fails the test; elsewhere it is
// skipped, loudly.
func tshark(t *testing.T) string {
	t.Helper()
	if os.Getenv(pcapReaderEnv) == "go" {
		t.Logf("%s=go: captures are read with the pcapng library, not tshark", pcapReaderEnv)
		return ""
	}
	p, err := exec.LookPath("tshark")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("tshark is not installed (CI installs it in .ci/run): %v", err)
	}
	t.Skipf("SKIPPED: tshark is not installed (apt-get install -y tshark): %v", err)
	return ""
}

// packetRow is one packet as tshark reads it.
type packetRow struct {
	comment, protocols, ipDst, ip6Dst, iface string
	dport                                    int
	reason                                   string
}

// readPcap reads a capture with tshark: every packet must parse, none may be malformed.
func readPcap(t *testing.T, file string) []packetRow {
	t.Helper()
	bin := tshark(t)
	if bin == "" {
		return readPcapLibrary(t, file)
	}
	cmd := exec.Command(bin, "-r", file, "-T", "fields", "-E", "occurrence=f",
		"-e", "frame.comment", "-e", "ip.dst", "-e", "udp.dstport", "-e", "ipv6.dst", "-e", "frame.protocols",
		"-e", "frame.interface_name", "-e", "_ws.malformed")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", file, err, stderr.String())
	}
	var rows []packetRow
	for i, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			t.Fatalf("tshark line %d: %d fields: %q", i+1, len(f), line)
		}
		if f[6] != "" {
			t.Errorf("packet %d is malformed to tshark: %q", i+1, line)
		}
		r := packetRow{comment: f[0], ipDst: f[1], ip6Dst: f[3], protocols: f[4], iface: f[5]}
		fmt.Sscan(f[2], &r.dport)
		r.reason = commentReason(t, i, r.comment)
		rows = append(rows, r)
	}
	return rows
}

// commentReason is the reason a packet's comment starts with.
func commentReason(t *testing.T, i int, comment string) string {
	t.Helper()
	reason, ok := strings.CutPrefix(strings.Fields(comment + " ")[0], "reason=")
	if !ok {
		t.Errorf("packet %d: comment %q does not start with the reason", i+1, comment)
	}
	return reason
}

// byReason counts drop records or packets by reason.
func byReason[T any](xs []T, reason func(T) string) map[string]int {
	m := map[string]int{}
	for _, x := range xs {
		m[reason(x)]++
	}
	return m
}

// The hidden-loss lab recorded with --pcap next to --output: tshark reads every packet, the
// comments carry the reasons, the CPU_BACKLOG packets are the veth flow's and the NO_SOCKET ones
// go to the closed port, and the capture holds exactly the events written, the same ones as the
// JSON lines.
func TestPrivPcapHiddenLoss(t *testing.T) {
	tshark(t)
	const senderCPU, rpsCPU = 0, 1
	const floodPort, closedPort = 9000, 9001
	lab := hiddenLossLab(t, rpsCPU, floodPort)
	pcap := filepath.Join(t.TempDir(), "drops.pcapng")
	rec := session(t, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := lab.Flood(ctx, senderCPU, floodPort, max(floodCount(t)/10, 5000), 64); err != nil {
			t.Errorf("flood: %v", err)
		}
		for i := 0; i < 50; i++ {
			if _, err := lab.Flood(ctx, senderCPU, closedPort, 1, 64); err != nil {
				t.Fatalf("closed-port send %d: %v", i, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}, "--pcap", pcap, "--max-event-rate", "0", "--netns", lab.Receiver)

	rows := readPcap(t, pcap)
	tr := rec.summary.Tracer
	t.Logf("%d packets in the capture; events sent %d, written %d, lost %d", len(rows), tr.EventsSent, tr.EventsWritten, rec.summary.LostEvents)
	if uint64(len(rows)) != tr.EventsWritten || len(rows) != len(rec.drops) {
		t.Errorf("%d packets in the capture, %d drop records, summary says %d events written", len(rows), len(rec.drops), tr.EventsWritten)
	}
	if got, want := byReason(rows, func(r packetRow) string { return r.reason }), byReason(rec.drops, func(d record.Drop) string { return d.Reason }); !maps.Equal(got, want) {
		t.Errorf("packets by reason %v, drop records by reason %v", got, want)
	}
	rx := netnsInode(t, lab.Receiver)
	var backlog, noSocket int
	for i, r := range rows {
		if !strings.Contains(r.comment, fmt.Sprintf(" netns=%d ", rx)) || !strings.Contains(r.comment, " cpu=") || !strings.Contains(r.comment, " location=") {
			t.Errorf("packet %d: comment %q lacks the location, CPU or the receiver's netns %d", i+1, r.comment, rx)
		}
		switch r.reason {
		case "CPU_BACKLOG":
			backlog++
			if r.ipDst != lab.ReceiverAddr.String() || (r.dport != floodPort && r.dport != closedPort) ||
				!strings.HasPrefix(r.protocols, "eth:ethertype:ip:udp") || !strings.HasPrefix(r.iface, lab.ReceiverIf+"@netns ") {
				t.Errorf("CPU_BACKLOG packet %d: %+v, want the veth flow to %s port %d on %s", i+1, r, lab.ReceiverAddr, floodPort, lab.ReceiverIf)
			}
		case "NO_SOCKET":
			noSocket++
			if r.ipDst != lab.ReceiverAddr.String() || r.dport != closedPort {
				t.Errorf("NO_SOCKET packet %d: %+v, want to %s port %d", i+1, r, lab.ReceiverAddr, closedPort)
			}
		}
	}
	if backlog == 0 || noSocket == 0 {
		t.Errorf("%d CPU_BACKLOG and %d NO_SOCKET packets: the scenario did not reproduce", backlog, noSocket)
	}
}

// ownNetns creates a network namespace for one test, removed when it ends.
func ownNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("dtpcap-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	return name
}

// openTun creates a layer-3 tun device in ns, a device with no link header: what is written
// to the returned file enters the namespace as an IP packet with no MAC header before it.
func openTun(t *testing.T, ns, name string) *os.File {
	t.Helper()
	var f *os.File
	err := netns.Do(netns.RunDir+"/"+ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var req [unix.IFNAMSIZ + 64]byte
		copy(req[:], name)
		bin.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], unix.IFF_TUN|unix.IFF_NO_PI)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", errno)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun")
		return nil
	})
	if err != nil {
		t.Fatalf("tun device in %s: %v", ns, err)
	}
	t.Cleanup(func() { f.Close() })
	ipCmd(t, "-n", ns, "addr", "add", "10.99.0.1/24", "dev", name)
	ipCmd(t, "-n", ns, "addr", "add", "fd00:99::1/64", "dev", name, "nodad")
	ipCmd(t, "-n", ns, "link", "set", name, "up")
	return f
}

// udpPacket is an IPv4 or IPv6 UDP datagram from src to dst:port, checksums filled in.
func udpPacket(src, dst netip.Addr, port uint16, payload []byte) []byte {
	udp := make([]byte, 8+len(payload))
	bin.BigEndian.PutUint16(udp[0:], 40000)
	bin.BigEndian.PutUint16(udp[2:], port)
	bin.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[8:], payload)
	var pseudo []byte
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	pseudo = append(pseudo, 0, 17, byte(len(udp)>>8), byte(len(udp)))
	sum := checksum(append(pseudo, udp...))
	if sum == 0 {
		sum = 0xffff
	}
	bin.BigEndian.PutUint16(udp[6:], sum)
	if src.Is4() {
		ip := []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0}
		bin.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
		bin.BigEndian.PutUint16(ip[10:], checksum(ip))
		return append(ip, udp...)
	}
	ip := []byte{0x60, 0, 0, 0, byte(len(udp) >> 8), byte(len(udp)), 17, 64}
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	return append(ip, udp...)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// IPv6, and drops with no MAC header: datagrams to a closed port over IPv6 loopback (an
// Ethernet header), and into a tun device (none: the capture starts at the IP header, as raw
// IP). Written to stdout (--pcap -) while the JSON lines go to --output: stdout holds pcapng
// only.
func TestPrivPcapIPv6AndRawIP(t *testing.T) {
	tshark(t)
	requireRoot(t)
	ns := ownNetns(t)
	tun := openTun(t, ns, "dtpcap0")
	const port = 9002
	dir := t.TempDir()
	pcap := filepath.Join(dir, "stdout.pcapng")
	rec := sessionStdout(t, pcap, func() {
		sendUDPTo(t, netns.RunDir+"/"+ns, "::1", port, 3)
		for _, p := range [][]byte{
			udpPacket(netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1"), port, []byte("raw ipv4")),
			udpPacket(netip.MustParseAddr("fd00:99::2"), netip.MustParseAddr("fd00:99::1"), port, bytes.Repeat([]byte("raw ipv6"), 40)),
		} {
			for range 3 {
				if _, err := tun.Write(p); err != nil {
					t.Fatalf("write to tun: %v", err)
				}
			}
		}
	}, "--pcap", "-", "--max-event-rate", "0", "--netns", ns, "--port", fmt.Sprint(port))
	rows := readPcap(t, pcap)
	if uint64(len(rows)) != rec.summary.Tracer.EventsWritten || len(rows) != 9 {
		t.Errorf("%d packets, summary says %d events written; want 9", len(rows), rec.summary.Tracer.EventsWritten)
	}
	kinds := map[string]int{}
	for i, r := range rows {
		var kind string
		switch {
		case r.ip6Dst == "::1" && strings.HasPrefix(r.protocols, "eth:ethertype:ipv6:udp") && strings.HasPrefix(r.iface, "lo@netns "):
			kind = "loopback ipv6"
		case r.ipDst == "10.99.0.1" && strings.HasPrefix(r.protocols, "raw:ip:udp") && strings.HasPrefix(r.iface, "dtpcap0@netns "):
			kind = "raw ipv4"
		case r.ip6Dst == "fd00:99::1" && strings.HasPrefix(r.protocols, "raw:ipv6:udp") && strings.HasPrefix(r.iface, "dtpcap0@netns "):
			kind = "raw ipv6"
		default:
			t.Errorf("packet %d: %+v: not one of those sent", i+1, r)
			continue
		}
		if r.dport != port || r.reason != "NO_SOCKET" {
			t.Errorf("packet %d (%s): port %d, reason %q; want %d, NO_SOCKET", i+1, kind, r.dport, r.reason, port)
		}
		kinds[kind]++
	}
	if want := map[string]int{"loopback ipv6": 3, "raw ipv4": 3, "raw ipv6": 3}; !maps.Equal(kinds, want) {
		t.Errorf("packets %v, want %v", kinds, want)
	}
}

// sessionStdout runs a session as session does, with droptrace's stdout going to file.
func sessionStdout(t *testing.T, file string, traffic func(), args ...string) recording {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdoutTo = f
	defer func() { stdoutTo = nil }()
	return session(t, traffic, args...)
}

// loopbackCapture records, with --pcap and args, n datagrams to a closed port on loopback in a
// namespace of the test's own, the only one whose drops are streamed; it returns the
// recording and the capture's path.
func loopbackCapture(t *testing.T, n int, args ...string) (recording, string) {
	t.Helper()
	tshark(t)
	requireRoot(t)
	ns := ownNetns(t)
	pcap := filepath.Join(t.TempDir(), "drops.pcapng")
	rec := session(t, func() {
		sendUDPTo(t, netns.RunDir+"/"+ns, "127.0.0.1", 9003, n)
	}, append([]string{"--pcap", pcap, "--netns", ns}, args...)...)
	return rec, pcap
}

// In daemon mode the capture rotates with --output-max-size like the JSON lines: every file
// reads on its own, and together they hold every event written.
func TestPrivPcapRotates(t *testing.T) {
	const n = 2000
	rec, pcap := loopbackCapture(t, n, "--daemon", "--output-max-size", "64K", "--output-keep", "100", "--max-event-rate", "0")
	files, err := rotate.Files(pcap)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 64<<10 {
			t.Errorf("%s: %d bytes, past --output-max-size 64K", f, st.Size())
		}
		rows := readPcap(t, f)
		if len(rows) == 0 {
			t.Errorf("%s holds no packet", f)
		}
		total += len(rows)
	}
	if len(files) < 3 || uint64(total) != rec.summary.Tracer.EventsWritten || total < n {
		t.Errorf("%d files holding %d packets, summary says %d events written, %d datagrams sent", len(files), total, rec.summary.Tracer.EventsWritten, n)
	}
	if !slices.Contains(files, pcap) {
		t.Errorf("files %v lack %s", files, pcap)
	}
}

// Packets share the events' per-CPU rate limit: those over it are not in the capture and are
// counted in lost_events, and the capture holds exactly the events written.
func TestPrivPcapSharesTheRateLimit(t *testing.T) {
	const n = 300
	rec, pcap := loopbackCapture(t, n, "--max-event-rate", "1")
	rows := readPcap(t, pcap)
	tr := rec.summary.Tracer
	t.Logf("%d packets; events sent %d, written %d, rate-limited %d; lost_events %d", len(rows), tr.EventsSent, tr.EventsWritten, tr.EventsRateLimited, rec.summary.LostEvents)
	if uint64(len(rows)) != tr.EventsWritten || tr.EventsRateLimited < n/2 || rec.summary.LostEvents < tr.EventsRateLimited {
		t.Errorf("%d packets, %d events written, %d rate-limited, lost_events %d: want the packets written, the rest over the limit counted lost",
			len(rows), tr.EventsWritten, tr.EventsRateLimited, rec.summary.LostEvents)
	}
}
