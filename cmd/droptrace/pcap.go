// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/pcapng"
	"github.com/droptrace/droptrace/internal/rotate"
)

// pcapFlags are --pcap and --snaplen: the dropped packets as pcapng (docs/pcap.md).
type pcapFlags struct {
	path    string
	snaplen uint32
}

const defaultSnaplen = 128

func (p *pcapFlags) set(fs *pflag.FlagSet) {
	fs.StringVar(&p.path, "pcap", "", "also write each dropped packet as pcapng, with its drop reason in the packet comment, to this file ('-' for stdout: droptrace --pcap - | wireshark -k -i -); implies --events, shares --max-event-rate and the event filters")
	fs.Uint32Var(&p.snaplen, "snaplen", defaultSnaplen, fmt.Sprintf("bytes of each packet --pcap keeps, from the Ethernet header (else the IP header), %d to %d", minSnaplen, maxSnaplen))
}

// stdout says whether the packets go to stdout.
func (p *pcapFlags) stdout() bool { return p.path == "-" }

// check refuses what --pcap cannot do: binary on a terminal, two outputs on stdout or in one
// file. tty says whether stdout is a terminal. The snaplen's range is validateBounds'.
func (p *pcapFlags) check(f *flags, tty bool) error {
	switch {
	case p.path == "":
	case f.countersOnly:
		return usagef("--pcap takes the packets from BPF, which --counters-only does not load: drop one of them")
	case p.stdout() && f.output == "-":
		return usagef("--pcap - and --output - both write to stdout: give one of them a file")
	case p.stdout() && f.live == "on":
		return usagef("--pcap - writes to stdout, where --live on draws: give --pcap a file")
	case p.stdout() && tty:
		return usagef("--pcap - writes binary pcapng, and stdout is a terminal: pipe it (droptrace --pcap - | wireshark -k -i -) or give a file")
	case f.outputFile() && filepath.Clean(f.output) == filepath.Clean(p.path):
		return usagef("--pcap and --output name the same file %s", p.path)
	}
	return nil
}

// packets is --pcap's sink and what closes it.
type packets struct {
	w     *pcapng.Writer
	close func() error
	name  string
}

// open opens --pcap FILE as --output is opened: without following a link, refusing a file
// droptrace must not write as root, and rotated by --output-max-size and --output-keep.
func (p *pcapFlags) open(f *flags, stdout io.Writer, log *slog.Logger) (*packets, error) {
	app := "droptrace " + version
	if p.stdout() {
		return &packets{w: pcapng.New(stdout, p.snaplen, app), close: func() error { return nil }, name: "stdout"}, nil
	}
	if f.fleet.maxSize > 0 {
		rw, err := rotate.Open(p.path, int64(f.fleet.maxSize), f.fleet.keep)
		if err != nil {
			return nil, fmt.Errorf("open --pcap: %w", err)
		}
		log.Info("writing rotated pcapng", "pcap", p.path, "max_size", f.fleet.maxSize.String(), "keep", f.fleet.keep)
		return &packets{w: pcapng.New(rw, p.snaplen, app), close: rw.Close, name: p.path}, nil
	}
	file, err := rotate.Create(p.path)
	if err != nil {
		return nil, fmt.Errorf("open --pcap: %w", err)
	}
	return &packets{w: pcapng.New(file, p.snaplen, app), close: func() error { return syncClose(file, p.path) }, name: p.path}, nil
}

// lostError says how many packets could not be written, or is nil when none was lost.
func (p *packets) lostError() error {
	if _, lost := p.w.Counts(); lost > 0 {
		return fmt.Errorf("%d packets could not be written to %s; the capture is incomplete: %w", lost, p.name, errRecordsLost)
	}
	return nil
}
