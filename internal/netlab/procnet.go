// SPDX-License-Identifier: Apache-2.0

package netlab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func (l *Lab) checkNS(ns string) error {
	if ns != l.Sender && ns != l.Receiver {
		return fmt.Errorf("namespace %q is not this lab's (%s, %s)", ns, l.Sender, l.Receiver)
	}
	return nil
}

// ReadFile reads /proc/net/<name> (snmp, netstat, dev, ...) as seen from one of the lab's
// namespaces, l.Sender or l.Receiver.
func (l *Lab) ReadFile(ns, name string) ([]byte, error) {
	if err := l.checkNS(ns); err != nil {
		return nil, err
	}
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("/proc/net file %q: want a plain file name", name)
	}
	var b []byte
	err := l.inNetns(ns, func() error {
		var err error
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/%s in %s: %w", name, ns, err)
	}
	return b, nil
}

// LinkStats are an interface's counters as `ip -s link` shows them. RxDropped includes the
// drops the core counts against the device (dev_core_stats), such as a full per-CPU backlog.
type LinkStats struct {
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

// LinkStats reads the counters of an interface in one of the lab's namespaces.
func (l *Lab) LinkStats(ns, ifname string) (LinkStats, error) {
	if err := l.checkNS(ns); err != nil {
		return LinkStats{}, err
	}
	out, err := exec.Command("ip", "-n", ns, "-j", "-s", "link", "show", "dev", ifname).Output()
	if err != nil {
		return LinkStats{}, fmt.Errorf("ip -n %s -s link show dev %s: %w", ns, ifname, err)
	}
	return parseLinkStats(out)
}

func parseLinkStats(b []byte) (LinkStats, error) {
	var links []struct {
		Stats64 *struct {
			Rx struct{ Packets, Dropped uint64 } `json:"rx"`
			Tx struct{ Packets, Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(b, &links); err != nil {
		return LinkStats{}, fmt.Errorf("ip -j -s link output: %w", err)
	}
	if len(links) != 1 || links[0].Stats64 == nil {
		return LinkStats{}, fmt.Errorf("ip -j -s link output: want one link with stats64: %s", b)
	}
	s := links[0].Stats64
	return LinkStats{RxPackets: s.Rx.Packets, RxDropped: s.Rx.Dropped, TxPackets: s.Tx.Packets, TxDropped: s.Tx.Dropped}, nil
}
