// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The README's "Fleet use" section lists every metric, and only metrics that exist.
func TestREADMEListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Fleet use\n")
	if !ok {
		t.Fatal(`README.md has no "## Fleet use" section`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	names := Names()
	for _, n := range names {
		if !strings.Contains(sec, "`"+n+"`") {
			t.Errorf("README's Fleet use does not list `%s`", n)
		}
	}
	for _, m := range regexp.MustCompile("`(droptrace_[a-z_]+)`").FindAllStringSubmatch(sec, -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("README's Fleet use lists %s, which droptrace does not serve", m[1])
		}
	}
}
