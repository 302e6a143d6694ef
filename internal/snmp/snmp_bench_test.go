// SPDX-License-Identifier: Apache-2.0

package snmp

import (
	"bytes"
	"testing"
)

// BenchmarkParse reads /proc/net/snmp and /proc/net/netstat of one namespace, as every interval
// does for each namespace (twice: the reads bracket the BPF map reads).
func BenchmarkParse(b *testing.B) {
	raws := [][]byte{fixture(b, "6.18-snmp.txt"), fixture(b, "6.18-netstat.txt")}
	b.ReportAllocs()
	b.SetBytes(int64(len(raws[0]) + len(raws[1])))
	for b.Loop() {
		c, err := Parse(bytes.NewReader(raws[0]))
		if err != nil {
			b.Fatal(err)
		}
		n, err := Parse(bytes.NewReader(raws[1]))
		if err != nil {
			b.Fatal(err)
		}
		c.Merge(n)
	}
}

// BenchmarkParseNetstat reads the largest file alone: TcpExt's header grows with every kernel.
func BenchmarkParseNetstat(b *testing.B) {
	raw := fixture(b, "6.18-netstat.txt")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseSNMP6 reads /proc/net/snmp6, whose layout differs (one counter per line).
func BenchmarkParseSNMP6(b *testing.B) {
	raw := fixture(b, "6.18-snmp6.txt")
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := ParseSNMP6(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}
