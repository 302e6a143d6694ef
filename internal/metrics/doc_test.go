// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docPath documents every metric, in its "## Metrics" section.
const docPath = "../../docs/metrics.md"

var metricName = regexp.MustCompile("`(droptrace_[a-z_]+)`")

// docs/metrics.md lists every metric droptrace serves, and only those.
func TestDocListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatalf(`%s has no "## Metrics" section`, docPath)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	names := Names()
	for _, n := range names {
		if !strings.Contains(sec, "`"+n+"`") {
			t.Errorf("%s does not list `%s`", docPath, n)
		}
	}
}

// Neither the README nor any page in docs/ names a metric droptrace does not serve: readers
// query the names they find there.
func TestDocsNameOnlyServedMetrics(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	names := Names()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricName.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(names, m[1]) {
				t.Errorf("%s names %s, which droptrace does not serve", filepath.Base(f), m[1])
			}
		}
	}
}
