// SPDX-License-Identifier: Apache-2.0

package record

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"testing"
	"time"
)

// sampleDrop is a typical streamed drop: every field set, as under a UDP flood.
func sampleDrop() *Drop {
	return &Drop{
		Header: Header{Type: TypeDrop, Time: Time(time.Date(2026, 11, 23, 8, 17, 0, 229130450, time.UTC))},
		CPU:    1, Reason: "SOCKET_RCVBUFF", ReasonCode: 8, Location: "udp_queue_rcv_one_skb+0x437",
		Ifindex: 2, Ifname: "veth0", Netns: 4026531840, Len: 92, L3: "ipv4", L4: "udp",
		Src: "10.251.7.1", Dst: "10.251.7.2", Sport: 40000, Dport: 9000,
	}
}

// BenchmarkWriteDrop is the per-event cost of the JSON lines writer: every streamed drop goes
// through it.
func BenchmarkWriteDrop(b *testing.B) {
	w := NewWriter(io.Discard)
	d := sampleDrop()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteInterval is the per-interval cost of a realistic interval record.
func BenchmarkWriteInterval(b *testing.B) {
	raw, err := os.ReadFile("testdata/interval.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var iv Interval
	if err := json.Unmarshal(raw, &iv); err != nil {
		b.Fatal(err)
	}
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := w.Write(&iv); err != nil {
			b.Fatal(err)
		}
	}
}

// encodeStd is what encoding/json writes for v with the Writer's settings.
func encodeStd(t testing.TB, v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// writeOne is what the Writer writes for d.
func writeOne(t testing.TB, d *Drop) string {
	var b bytes.Buffer
	w := NewWriter(&b)
	if err := w.Write(d); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.String()
}

// fillDrop sets every field of a Drop, found by reflection, so that a field added to Drop
// without a line in AppendJSON fails TestWriteDropMatchesEncodingJSON.
func fillDrop(t testing.TB, str string, num uint64) *Drop {
	d := &Drop{}
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			switch {
			case v.Type().Field(i).Type == reflect.TypeOf(Time{}):
				f.Set(reflect.ValueOf(Time(time.Unix(0, int64(num%(1<<62))).In(time.FixedZone("x", 3600)))))
			case f.Kind() == reflect.Struct:
				fill(f)
			case f.Kind() == reflect.String:
				f.SetString(str)
			case f.CanUint():
				f.SetUint(num & (1<<f.Type().Bits() - 1))
			default:
				t.Fatalf("Drop field %s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
			}
		}
	}
	fill(reflect.ValueOf(d).Elem())
	return d
}

func TestWriteDropMatchesEncodingJSON(t *testing.T) {
	cases := []*Drop{sampleDrop(), {}, fillDrop(t, "", 0)}
	for _, s := range []string{"plain", `quote " and \ backslash`, "tab\tnewline\n\x01\x7f", "<html>&", "é ü 日本", "bad \xff utf8", "\u2028\u2029"} {
		for _, n := range []uint64{1, 0xffff, 0xffffffff, 1 << 63} {
			cases = append(cases, fillDrop(t, s, n))
		}
	}
	for _, d := range cases {
		if got, want := writeOne(t, d), encodeStd(t, d); got != want {
			t.Errorf("drop %+v\nwriter:        %s\nencoding/json: %s", d, got, want)
		}
	}
}

func FuzzWriteDrop(f *testing.F) {
	f.Add("SOCKET_RCVBUFF", "udp_queue_rcv_one_skb+0x437", "veth0", uint32(8), uint16(9000), int64(1))
	f.Add("x\"\\\x00\xff", "", "\u2028", uint32(0), uint16(0), int64(-1))
	f.Fuzz(func(t *testing.T, reason, loc, ifname string, code uint32, port uint16, ns int64) {
		d := &Drop{Header: Header{Type: TypeDrop, Time: Time(time.Unix(0, ns))}, Reason: reason, ReasonCode: code,
			Location: loc, Ifname: ifname, L3: ifname, Src: reason, Dport: port, Sport: port / 2}
		if got, want := writeOne(t, d), encodeStd(t, d); got != want {
			t.Errorf("writer:        %s\nencoding/json: %s", got, want)
		}
	})
}
