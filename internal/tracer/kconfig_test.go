// SPDX-License-Identifier: Apache-2.0

package tracer

import (
	"bufio"
	"compress/gzip"
	"os"
	"strconv"
	"strings"
	"testing"
)

func kconfigHZ(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/config.gz to compare the measured HZ with: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			hz, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return hz
		}
	}
	t.Fatal("no CONFIG_HZ in /proc/config.gz")
	return 0
}
