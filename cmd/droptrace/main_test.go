// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad input is refused before anything is loaded, with an error naming the input and what
// was expected.
func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--interval", "0s", "--output", "/dev/null"}, 2, "--interval 0s: want 50ms to 1h"},
		{[]string{"--duration", "-1s", "--output", "/dev/null"}, 2, "--duration -1s: want 0"},
		{[]string{"--ring-buffer-size", "5000", "--output", "/dev/null"}, 2, "--ring-buffer-size 5000: want a power of two"},
		{[]string{"--live", "sometimes", "--output", "/dev/null"}, 2, `--live "sometimes": want auto, on or off`},
		{[]string{"--log-level", "loud"}, 2, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"--interval", "fast"}, 2, `invalid argument "fast" for "--interval"`},
		{[]string{"frobnicate"}, 2, `unexpected argument "frobnicate" (subcommands:`},
		{[]string{"--output", "/nonexistent-dir/x.jsonl"}, 1, "open --output"},
		{[]string{"--pcap", "x.pcapng", "--counters-only"}, 2, "--pcap takes the packets from BPF, which --counters-only does not load"},
		{[]string{"--pcap", "-", "--output", "-"}, 2, "--pcap - and --output - both write to stdout"},
		{[]string{"--pcap", "-", "--live", "on"}, 2, "--pcap - writes to stdout, where --live on draws"},
		{[]string{"--pcap", "/dev/null", "--snaplen", "300"}, 2, "--snaplen 300: want 64 to 256 bytes"},
		{[]string{"--pcap", "/dev/null", "--snaplen", "10"}, 2, "--snaplen 10: want 64 to 256 bytes"},
		{[]string{"--pcap", "/tmp/x", "--output", "/tmp/./x"}, 2, "--pcap and --output name the same file"},
		{[]string{"--pcap", "/nonexistent-dir/x.pcapng", "--live", "off"}, 1, "open --pcap"},
		{[]string{"--output-max-size", "1M", "--pcap", "-"}, 2, "--output-max-size 1M: give --output FILE (or --pcap FILE)"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("droptrace %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "JSON schema 1") {
		t.Errorf("version: %d %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "sudo droptrace --duration 30s --output burst.jsonl") {
		t.Errorf("--help shows no example: %d %q", code, errb.String())
	}
}
