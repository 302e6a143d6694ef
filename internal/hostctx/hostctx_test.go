// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// parse reads the file at path with one of the package's parsers.
func parse[T any](t *testing.T, path string, parser func(io.Reader) (T, error)) T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := parser(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func parseFile(t *testing.T, name string) []IRQ {
	t.Helper()
	return parse(t, filepath.Join("testdata", name), ParseInterrupts)
}

func TestParseInterrupts(t *testing.T) {
	irqs := parseFile(t, "interrupts-ixgbe.txt")
	if len(irqs) != 7 {
		t.Fatalf("%d IRQs, want 7 (NMI/LOC/ERR are not device IRQs)", len(irqs))
	}
	if irqs[1].Num != 45 || irqs[1].Name != "eth0-TxRx-0" || irqs[1].Counts[0] != 9812331 || irqs[1].Counts[3] != 0 {
		t.Errorf("%+v", irqs[1])
	}
	if irqs[6].Name != "mlx5_comp0@pci:0000:3b:00.0" || irqs[6].Counts[1] != 1200000 {
		t.Errorf("%+v", irqs[6])
	}
	real := parseFile(t, "interrupts-virtio-6.18.txt")
	var found bool
	for _, q := range real {
		if q.Name == "virtio2-input.0" {
			found = true
		}
	}
	if !found {
		t.Error("virtio2-input.0 not parsed from this machine's /proc/interrupts")
	}
	for _, bad := range []struct{ in, want string }{
		{"", "no header line"},
		{"  CPU0 CPU1\n 5: 1\n", "IRQ 5 has 1 counts for 2 CPUs"},
		{"  CPU0\n 5: x edge foo\n", "IRQ 5 CPU0 count \"x\""},
		{"  XPU0\n", "header column \"XPU0\""},
	} {
		if _, err := ParseInterrupts(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseInterrupts(%q): %v, want %q", bad.in, err, bad.want)
		}
	}
}

func TestSubCounts(t *testing.T) {
	d := SubCounts(map[int]uint64{0: 10, 1: 0xfffffff0}, map[int]uint64{0: 15, 1: 0x10, 2: 7})
	if d[0] != 5 || d[1] != 0x20 {
		t.Errorf("%v", d)
	}
	if _, ok := d[2]; ok {
		t.Error("CPU without baseline got a delta")
	}
}

// A fake sysfs/procfs: eth0 is an ixgbe-like PCI NIC with MSI IRQs 45-49.
func fakeRoots(t *testing.T) hostfs.FS {
	t.Helper()
	root := t.TempDir()
	sys, proc := filepath.Join(root, "sys"), filepath.Join(root, "proc")
	mk := func(p, content string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pci := filepath.Join(sys, "devices/pci0000:00/0000:03:00.0")
	for _, n := range []string{"45", "46", "47", "48", "49"} {
		mk(filepath.Join(pci, "msi_irqs", n), "msix")
		mk(filepath.Join(proc, "irq", n, "smp_affinity_list"), "0-3\n")
		mk(filepath.Join(proc, "irq", n, "effective_affinity_list"), "0\n")
	}
	net := filepath.Join(sys, "class/net/eth0")
	mk(filepath.Join(net, "statistics/rx_dropped"), "812\n")
	mk(filepath.Join(net, "threaded"), "0\n")
	for i, mask := range []string{"0", "e", "0", "00000001,00000000"} {
		q := filepath.Join(net, "queues", "rx-"+string(rune('0'+i)))
		mk(filepath.Join(q, "rps_cpus"), mask+"\n")
		mk(filepath.Join(q, "rps_flow_cnt"), "0\n")
	}
	if err := os.Symlink(pci, filepath.Join(net, "device")); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(sys, "class/net/lo/statistics/rx_dropped"), "0\n")
	mk(filepath.Join(proc, "4242/comm"), "irqbalance\n")
	return hostfs.New(root)
}

func TestNetworkIRQsAndInterfaces(t *testing.T) {
	fsys := fakeRoots(t)
	nirqs := NetworkIRQs(fsys, parseFile(t, "interrupts-ixgbe.txt"))
	if len(nirqs) != 5 {
		t.Fatalf("%d network IRQs, want eth0's 5: %+v", len(nirqs), nirqs)
	}
	q := nirqs[2]
	if q.IRQ != 47 || q.Ifname != "eth0" || q.Queue != 2 || !q.RX || !reflect.DeepEqual(q.Affinity, []int{0, 1, 2, 3}) || !reflect.DeepEqual(q.Effective, []int{0}) {
		t.Errorf("%+v", q)
	}
	if last := nirqs[4]; last.Name != "eth0" || last.Queue != -1 || last.RX {
		t.Errorf("the link/misc IRQ is no RX queue: %+v", last)
	}
	ifs := Interfaces(fsys)
	if len(ifs) != 1 || ifs[0].RxQueues != 4 || ifs[0].RxDropped != 812 || ifs[0].Threaded != "0" {
		t.Fatalf("%+v", ifs)
	}
	if !reflect.DeepEqual(ifs[0].RPSCPUs[1], []int{1, 2, 3}) || len(ifs[0].RPSCPUs[0]) != 0 || !reflect.DeepEqual(ifs[0].RPSCPUs[3], []int{32}) {
		t.Errorf("rps %v", ifs[0].RPSCPUs)
	}
	if !IrqbalanceRunning(fsys) {
		t.Error("irqbalance not found")
	}
	if d := RxDropped(fsys); d["eth0"] != 812 {
		t.Errorf("%v", d)
	}
}

func TestCPUMasks(t *testing.T) {
	for _, tc := range []struct {
		mask string
		cpus []int
	}{{"0", nil}, {"e", []int{1, 2, 3}}, {"00000001,00000000", []int{32}}, {"3,00000001", []int{0, 32, 33}}, {"6", []int{1, 2}}} {
		got := ParseCPUMask(tc.mask)
		if len(got) != len(tc.cpus) || (len(got) > 0 && !reflect.DeepEqual(got, tc.cpus)) {
			t.Errorf("ParseCPUMask(%q) = %v, want %v", tc.mask, got, tc.cpus)
		}
		// The kernel pads the first word to nr_cpu_ids; it accepts any width back.
		if back := ParseCPUMask(FormatCPUMask(tc.cpus)); len(tc.cpus) > 0 && !reflect.DeepEqual(back, tc.cpus) {
			t.Errorf("FormatCPUMask(%v) = %q does not parse back", tc.cpus, FormatCPUMask(tc.cpus))
		}
	}
}

// The running host's /proc/interrupts parses and its network IRQs are logged (on a virtio-net
// VM, eth0's input queue IRQ is found through the PCI parent).
func TestRealVirtio(t *testing.T) {
	f, err := os.Open("/proc/interrupts")
	if err != nil {
		t.Skip("SKIPPED: no /proc/interrupts")
	}
	defer f.Close()
	irqs, err := ParseInterrupts(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range NetworkIRQs(hostfs.Host(), irqs) {
		t.Logf("%+v", n)
	}
}

func FuzzParseInterrupts(f *testing.F) {
	for _, n := range []string{"interrupts-ixgbe.txt", "interrupts-virtio-6.18.txt"} {
		b, _ := os.ReadFile("testdata/" + n)
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, in string) {
		irqs, err := ParseInterrupts(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, q := range irqs {
			if q.Counts == nil {
				t.Fatal("IRQ without counts")
			}
		}
	})
}
