// SPDX-License-Identifier: Apache-2.0

package session

import (
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/droptrace/droptrace/internal/assemble"
	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/enrich"
	"github.com/droptrace/droptrace/internal/kallsyms"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// BenchmarkEventToRecord is droptrace's userspace cost per streamed drop after the ring buffer
// read: naming the reason and location, the record, the port tally and the JSON line.
func BenchmarkEventToRecord(b *testing.B) {
	reasons, err := dropreason.Load()
	if err != nil {
		b.Skipf("SKIPPED: no kernel BTF to name drop reasons: %v", err)
	}
	f, err := os.Open("../kallsyms/testdata/sample.txt")
	if err != nil {
		b.Fatal(err)
	}
	syms, err := kallsyms.Parse(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	s := &Session{reasons: reasons, syms: syms}
	names := assemble.Names{Reason: s.reasonName, Location: s.locationName}
	code, _ := reasons.Code("NO_SOCKET")
	e := tracer.Event{MonoNs: 1, Location: 0xffffffff81002010, Reason: code, Netns: 4026531840, Ifindex: 1,
		Len: 92, CPU: 0, L3: tracer.EthIPv4, L4: 17, Sport: 40000, Dport: 9,
		Src: netip.MustParseAddr("127.0.0.1"), Dst: netip.MustParseAddr("127.0.0.1"), Ifname: "lo"}
	rw := record.NewWriter(io.Discard)
	w := newEventWriter(rw, names, &enrich.Ifnames{})
	b.ReportAllocs()
	for b.Loop() {
		e.MonoNs += 1000
		w.write(&e)
	}
	rw.Flush()
	if written, _ := rw.Counts(); written.Drops() == 0 {
		b.Fatal("nothing written")
	}
}
