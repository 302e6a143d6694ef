// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/droptrace/droptrace/internal/tracer"
)

// The bounds of the numeric flags. Each one keeps a mistyped value from costing the host
// what it shares with everything else: CPU (--interval), locked kernel memory
// (--ring-buffer-size), time spent renaming at each rotation (--output-keep). docs/security.md
// lists them; TestFlagBounds checks both ends of each.
const (
	minInterval   = 50 * time.Millisecond
	maxInterval   = time.Hour
	minDuration   = 100 * time.Millisecond // 0 too: until Ctrl-C or SIGTERM
	maxDuration   = 366 * 24 * time.Hour
	maxEventRate  = 1_000_000 // per CPU per second; 0 too: unlimited
	minRingBytes  = 4 << 10
	maxRingBytes  = 64 << 20
	minOutputSize = 64 << 10 // 0 too: never rotate
	maxOutputSize = 1 << 40
	maxOutputKeep = 1000
	// --snaplen: an Ethernet, an IPv6 and a transport header's ports at least; at most what
	// BPF copies per event (DT_SNAPLEN_MAX), every event's cost under a flood.
	minSnaplen = 64
	maxSnaplen = uint32(tracer.MaxSnaplen)
)

// validateBounds checks every numeric flag against its documented range, and the form of
// --runtime-state-dir (pods.go). It runs before
// anything is opened, loaded or bound; each error in what it returns is a usageError.
func (f *flags) validateBounds() error {
	var errs []error
	if f.interval < minInterval || f.interval > maxInterval {
		errs = append(errs, usagef("--interval %s: want %s to %s", f.interval, minInterval, fmtHours(maxInterval)))
	}
	if f.duration != 0 && (f.duration < minDuration || f.duration > maxDuration) {
		errs = append(errs, usagef("--duration %s: want 0 (until Ctrl-C or SIGTERM) or %s to %s", f.duration, minDuration, fmtHours(maxDuration)))
	}
	if f.maxEventRate > maxEventRate {
		errs = append(errs, usagef("--max-event-rate %d: want 0 (unlimited) or 1 to %d events per second per CPU", f.maxEventRate, maxEventRate))
	}
	if f.ringBytes < minRingBytes || f.ringBytes > maxRingBytes || f.ringBytes&(f.ringBytes-1) != 0 {
		errs = append(errs, usagef("--ring-buffer-size %d: want a power of two from %d (4 KiB) to %d (64 MiB)", f.ringBytes, minRingBytes, maxRingBytes))
	}
	if s := int64(f.fleet.maxSize); s != 0 && (s < minOutputSize || s > maxOutputSize) {
		errs = append(errs, usagef("--output-max-size %s: want 0 (never rotate) or 64K to 1024G", f.fleet.maxSize.String()))
	}
	if f.fleet.keep < 0 || f.fleet.keep > maxOutputKeep {
		errs = append(errs, usagef("--output-keep %d: want 0 to %d", f.fleet.keep, maxOutputKeep))
	}
	if f.pcap.snaplen < minSnaplen || f.pcap.snaplen > maxSnaplen {
		errs = append(errs, usagef("--snaplen %d: want %d to %d bytes", f.pcap.snaplen, minSnaplen, maxSnaplen))
	}
	if _, err := f.pods.parse(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// fmtHours writes whole hours as "1h" or "8784h", not "1h0m0s".
func fmtHours(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
