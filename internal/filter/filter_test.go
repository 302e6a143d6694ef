// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/droptrace/droptrace/internal/dropreason"
	"github.com/droptrace/droptrace/internal/dropreason/dropreasontest"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// reasons is a kernel with a few reasons, numbered as 6.18 numbers them.
func reasons() (*dropreason.Table, error) {
	e := &btf.Enum{Name: "skb_drop_reason", Size: 4}
	for name, v := range map[string]uint64{"SKB_NOT_DROPPED_YET": 0, "SKB_CONSUMED": 1, "SKB_DROP_REASON_NOT_SPECIFIED": 2,
		"SKB_DROP_REASON_NO_SOCKET": 3, "SKB_DROP_REASON_SOCKET_RCVBUFF": 6, "SKB_DROP_REASON_TCP_LISTEN_OVERFLOW": 40,
		"SKB_DROP_REASON_MAX": 128} {
		e.Values = append(e.Values, btf.EnumValue{Name: name, Value: v})
	}
	b, err := btf.NewBuilder([]btf.Type{e}, nil)
	if err != nil {
		return nil, err
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		return nil, err
	}
	s, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return dropreason.FromSpec(s)
}

// fakeNS is one namespace besides droptrace's own, reached without entering anything.
type fakeNS struct{ Host }

func (fakeNS) ByInode(ino uint32) (Place, error) {
	if ino == 4026532000 {
		return Place{Inode: ino, Enter: func(fn func() error) error { return fn() }}, nil
	}
	return Place{}, os.ErrNotExist
}

func (fakeNS) Pod(name string) (Place, error) {
	if name == "shop/cart-0" {
		return Place{Inode: 4026532000, Enter: func(fn func() error) error { return fn() }}, nil
	}
	return Place{}, errors.New("no such pod")
}

func self(t *testing.T) uint32 {
	p, err := (Host{}).Self()
	if err != nil {
		t.Fatal(err)
	}
	return p.Inode
}

func TestResolve(t *testing.T) {
	env := Env{Reasons: reasons, Namespaces: fakeNS{}}
	f, err := Resolve(Spec{
		Reasons: []string{"NO_SOCKET", "skb_drop_reason_socket_rcvbuff", "NO_SOCKET"},
		Netns:   []string{"4026532000", "shop/cart-0"},
		Ifaces:  []string{"lo", "1"},
		Ports:   []string{"53", "8080", "53"},
		Protos:  []string{"UDP", "icmpv6", "132", "47", "udp"},
	}, env)
	if err != nil {
		t.Fatal(err)
	}
	wantBPF := tracer.Filter{Reasons: []uint32{3, 6}, Netns: []uint32{4026532000},
		Ifaces: []tracer.Iface{{Netns: 4026532000, Ifindex: 1}}, Ports: []uint16{53, 8080}, Protos: []uint8{17, 58, 132, 47}}
	// lo by name and by index, once: the fake namespace looks devices up in droptrace's own.
	if !reflect.DeepEqual(f.BPF, wantBPF) {
		t.Errorf("BPF filter\n%+v\nwant\n%+v", f.BPF, wantBPF)
	}
	wantRec := &record.Filters{Reasons: []string{"NO_SOCKET", "SOCKET_RCVBUFF"}, Netns: []uint32{4026532000},
		Ifaces: []record.FilterIface{{Name: "lo", Netns: 4026532000, Ifindex: 1}}, Ports: []uint16{53, 8080},
		Protos: []string{"udp", "icmpv6", "sctp", "gre"}}
	if !reflect.DeepEqual(f.Record, wantRec) {
		t.Errorf("record\n%+v\nwant\n%+v", f.Record, wantRec)
	}

	// Without --netns, devices are droptrace's own namespace's.
	f, err = Resolve(Spec{Ifaces: []string{"lo"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []tracer.Iface{{Netns: self(t), Ifindex: 1}}; !reflect.DeepEqual(f.BPF.Ifaces, want) {
		t.Errorf("--iface lo = %+v, want %+v", f.BPF.Ifaces, want)
	}
	if f, err := Resolve(Spec{}, env); err != nil || f.Record != nil || f.BPF.Active() {
		t.Errorf("no flags: %+v, %v; want no filter", f, err)
	}
}

// kernel515 loads 5.15.100's reasons: 5.17's enum, without CPU_BACKLOG or SOCKET_RCVBUFF.
func kernel515(t *testing.T) func() (*dropreason.Table, error) {
	tab := dropreasontest.Table(t, "5.15.100")
	return func() (*dropreason.Table, error) { return tab, nil }
}

// On 5.15.100 a reason the kernel passes filters as anywhere.
func TestResolveReasonOfAShortEnum(t *testing.T) {
	f, err := Resolve(Spec{Reasons: []string{"NO_SOCKET", "UDP_CSUM"}}, Env{Reasons: kernel515(t), Namespaces: fakeNS{}})
	if err != nil || !reflect.DeepEqual(f.BPF.Reasons, []uint32{1, 5}) {
		t.Errorf("5.15.100 NO_SOCKET, UDP_CSUM: %+v, %v; want codes 1, 5", f.BPF.Reasons, err)
	}
}

// Every bad value is an *Error naming its flag and what was expected; all are reported at once.
func TestResolveErrors(t *testing.T) {
	env := Env{Reasons: reasons, Namespaces: fakeNS{}}
	many := func(n int) []string {
		var s []string
		for i := range n {
			s = append(s, string(rune('1'+i)))
		}
		return s
	}
	for _, c := range []struct {
		name string
		spec Spec
		env  *Env
		want []string // in the message of the one error, in order
	}{
		{"unknown reason", Spec{Reasons: []string{"NO_SOCKETS"}}, nil, []string{`--reason "NO_SOCKETS"`, "close: NO_SOCKET"}},
		{"reason far from any", Spec{Reasons: []string{"QWERTYUIOPASDF"}}, nil, []string{`--reason "QWERTYUIOPASDF"`, "want a drop reason"}},
		{"no reasons in BTF", Spec{Reasons: []string{"NO_SOCKET"}},
			&Env{Reasons: func() (*dropreason.Table, error) { return nil, dropreason.ErrNoEnum }, Namespaces: fakeNS{}},
			[]string{"--reason", "not available on this kernel"}},
		{"too many reasons", Spec{Reasons: many(9)}, nil, []string{"--reason", "at most 8"}},
		{"reason named from the location", Spec{Reasons: []string{"CPU_BACKLOG"}}, &Env{Reasons: kernel515(t), Namespaces: fakeNS{}},
			[]string{`--reason "CPU_BACKLOG"`, "passes no CPU_BACKLOG", "location", "--port"}},
		{"not specified, renamed from the location", Spec{Reasons: []string{"not_specified"}}, &Env{Reasons: kernel515(t), Namespaces: fakeNS{}},
			[]string{`--reason "not_specified"`, "CPU_BACKLOG, SOCKET_RCVBUFF", "--port"}},
		{"port 0", Spec{Ports: []string{"0"}}, nil, []string{`--port "0"`, "1 to 65535"}},
		{"port too large", Spec{Ports: []string{"65536"}}, nil, []string{`--port "65536"`, "1 to 65535"}},
		{"port name", Spec{Ports: []string{"http"}}, nil, []string{`--port "http"`}},
		{"too many ports", Spec{Ports: many(9)}, nil, []string{"--port", "at most 8"}},
		{"proto name", Spec{Protos: []string{"quic"}}, nil, []string{`--proto "quic"`, "tcp, udp, icmp, icmpv6, sctp, udplite"}},
		{"proto number", Spec{Protos: []string{"256"}}, nil, []string{`--proto "256"`, "0 to 255"}},
		{"netns inode", Spec{Netns: []string{"12345"}}, nil, []string{`--netns "12345"`, "want a netns inode"}},
		{"netns path", Spec{Netns: []string{"/nonexistent/ns"}}, nil, []string{`--netns "/nonexistent/ns"`, "no such file"}},
		{"netns not a namespace", Spec{Netns: []string{"/proc/self/stat"}}, nil, []string{"not a network namespace"}},
		{"ip netns name", Spec{Netns: []string{"droptrace-no-such-ns"}}, nil, []string{`--netns "droptrace-no-such-ns"`, "/run/netns/droptrace-no-such-ns"}},
		{"pod", Spec{Netns: []string{"shop/none"}}, nil, []string{`--netns "shop/none"`, "no such pod"}},
		{"pods unresolved", Spec{Netns: []string{"shop/cart-0"}}, &Env{Reasons: reasons}, []string{"pod names are not resolved"}},
		{"too many netns", Spec{Netns: many(5)}, nil, []string{"--netns", "at most 4"}},
		{"iface", Spec{Ifaces: []string{"nosuchdev0"}}, nil, []string{`--iface "nosuchdev0"`, "want a device name or ifindex", "devices there: lo"}},
		{"ifindex", Spec{Ifaces: []string{"99999"}}, nil, []string{`--iface "99999"`, "want a device name or ifindex"}},
		{"iface with two netns", Spec{Netns: []string{"4026532000", "shop/cart-0", "/proc/self/ns/net"}, Ifaces: []string{"lo"}}, nil,
			[]string{"--iface", "give one --netns"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := env
			if c.env != nil {
				e = *c.env
			}
			_, err := Resolve(c.spec, e)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Resolve(%+v) = %v, want an *Error", c.spec, err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range c.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q: want %q (in order %q)", msg, w, c.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	// Several bad values: each is reported.
	_, err := Resolve(Spec{Ports: []string{"0", "x"}, Protos: []string{"y"}}, env)
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("three bad values, %d errors: %v", n, err)
	}
}

func TestClosest(t *testing.T) {
	names := []string{"NO_SOCKET", "SOCKET_RCVBUFF", "SOCKET_FILTER", "TCP_LISTEN_OVERFLOW", "CPU_BACKLOG"}
	for in, want := range map[string][]string{
		"NOSOCKET":     {"NO_SOCKET"},
		"SOCKET":       {"NO_SOCKET", "SOCKET_RCVBUFF", "SOCKET_FILTER"},
		"CPU_BACKLOGS": {"CPU_BACKLOG"},
		"XYZZY":        nil,
	} {
		if got := closest(in, names, 5); !reflect.DeepEqual(got, want) {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}
