// SPDX-License-Identifier: Apache-2.0

package hostctx

import (
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// NetIRQ is an IRQ of a network interface.
type NetIRQ struct {
	IRQ       int
	Name      string
	Ifname    string
	Queue     int  // RX/combined queue number from the name, -1 when unknown
	RX        bool // the name says it carries receive work (rx, input, TxRx, comp)
	Affinity  []int
	Effective []int
}

// rxName recognises receive-carrying IRQ names of common drivers: virtio-net
// (virtio2-input.0), Intel ixgbe/i40e/ice (eth0-TxRx-3), mlx5 (mlx5_comp3@pci:...), ena/bnxt/
// generic (ens5-rx-0, eth0-rx-2), and the queue number in them.
var rxName = regexp.MustCompile(`(?i)(?:input\.|txrx-|rx-|_comp|-fp-|rxtx-|-q)(\d+)`)

// deviceIRQs lists the MSI IRQs of an interface's device: for virtio the PCI device is the
// parent of the virtio device.
func deviceIRQs(fsys hostfs.FS, ifname string) map[int]bool {
	out := map[int]bool{}
	dev := path.Join(classNet, ifname, "device")
	for _, d := range []string{dev, path.Join(dev, "..")} {
		ents, err := fsys.ReadDir(path.Join(d, "msi_irqs"))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				out[n] = true
			}
		}
		if len(out) > 0 {
			break
		}
	}
	return out
}

// deviceName is the virtio device name (virtio2) that virtio-net IRQs are named after.
func deviceName(fsys hostfs.FS, ifname string) string {
	t, err := fsys.Readlink(path.Join(classNet, ifname, "device"))
	if err != nil {
		return ""
	}
	return path.Base(t)
}

// NetworkIRQs maps IRQs to this namespace's interfaces: by the device's MSI IRQ list, or by the
// interface's (or its virtio device's) name appearing in the IRQ's name.
func NetworkIRQs(fsys hostfs.FS, irqs []IRQ) []NetIRQ {
	ents, _ := fsys.ReadDir(classNet)
	var out []NetIRQ
	for _, e := range ents {
		ifname := e.Name()
		if ifname == "lo" {
			continue
		}
		msi := deviceIRQs(fsys, ifname)
		devName := deviceName(fsys, ifname)
		for _, irq := range irqs {
			byName := strings.HasPrefix(irq.Name, ifname+"-") || strings.Contains(irq.Name, ifname+"@") ||
				devName != "" && strings.HasPrefix(devName, "virtio") && strings.HasPrefix(irq.Name, devName+"-")
			if !msi[irq.Num] && !byName {
				continue
			}
			if strings.HasSuffix(irq.Name, "-config") || strings.Contains(irq.Name, "async") {
				continue // control interrupts carry no packets
			}
			n := NetIRQ{IRQ: irq.Num, Name: irq.Name, Ifname: ifname, Queue: -1}
			if m := rxName.FindStringSubmatch(irq.Name); m != nil {
				n.Queue, _ = strconv.Atoi(m[1])
				n.RX = !strings.Contains(strings.ToLower(irq.Name), "output") && !strings.HasSuffix(strings.ToLower(irq.Name), "-tx")
			}
			n.Affinity = readCPUList(fsys, path.Join("/proc/irq", strconv.Itoa(irq.Num), "smp_affinity_list"))
			n.Effective = readCPUList(fsys, path.Join("/proc/irq", strconv.Itoa(irq.Num), "effective_affinity_list"))
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IRQ < out[j].IRQ })
	return out
}

func readCPUList(fsys hostfs.FS, name string) []int {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return nil
	}
	cpus, err := ParseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return cpus
}

// ParseCPUList parses the kernel's list format ("0-3,8").
func ParseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// IrqbalanceRunning says whether an irqbalance process exists.
func IrqbalanceRunning(fsys hostfs.FS) bool {
	ents, err := fsys.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if fsys.ReadTrim(path.Join("/proc", e.Name(), "comm")) == "irqbalance" {
			return true
		}
	}
	return false
}
