// SPDX-License-Identifier: Apache-2.0

package snmp

import (
	"bytes"
	"io"
	"testing"
)

// benchParse parses the fixtures in turn, as one sample of a namespace does, merging them as
// the sample does; one op is all of them.
func benchParse(b *testing.B, parse func(io.Reader) (Counters, error), names ...string) {
	var raws [][]byte
	size := 0
	for _, n := range names {
		raws = append(raws, fixture(b, n))
		size += len(raws[len(raws)-1])
	}
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		var all Counters
		for _, raw := range raws {
			c, err := parse(bytes.NewReader(raw))
			if err != nil {
				b.Fatal(err)
			}
			if all == nil {
				all = c
			} else {
				all.Merge(c)
			}
		}
	}
}

// BenchmarkParse reads /proc/net/snmp and /proc/net/netstat of one namespace, as every interval
// does for each namespace (twice: the reads bracket the BPF map reads).
func BenchmarkParse(b *testing.B) {
	benchParse(b, Parse, "6.18-snmp.txt", "6.18-netstat.txt")
}

// BenchmarkParseNetstat reads the largest file alone: TcpExt's header grows with every kernel.
func BenchmarkParseNetstat(b *testing.B) {
	benchParse(b, Parse, "6.18-netstat.txt")
}

// BenchmarkParseSNMP6 reads /proc/net/snmp6, whose layout differs (one counter per line).
func BenchmarkParseSNMP6(b *testing.B) {
	benchParse(b, ParseSNMP6, "6.18-snmp6.txt")
}
