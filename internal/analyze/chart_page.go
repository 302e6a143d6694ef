// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/droptrace/droptrace/internal/textfmt"
)

func anyChanges(reports []*Report) bool {
	for _, r := range reports {
		if len(r.Summary.SysctlChanges) > 0 {
			return true
		}
	}
	return false
}

func chartTitle(reports []*Report) string {
	if len(reports) == 1 {
		r := reports[0]
		return fmt.Sprintf("droptrace: %s on %s, %s UTC, %s", filepath.Base(r.File), textfmt.OrDash(r.Start.Hostname),
			time.Time(r.Start.Time).UTC().Format("2006-01-02 15:04:05"), textfmt.DurationShort(r.Totals.DurationMs))
	}
	var names []string
	for i, r := range reports {
		names = append(names, fmt.Sprintf("[%d] %s", i+1, filepath.Base(r.File)))
	}
	return "droptrace: " + strings.Join(names, " vs ")
}

// chartSubtitles give each recording's settings and outcome in a line: what was tuned and
// what it did.
func chartSubtitles(reports []*Report) []string {
	var parts []string
	for i, r := range reports {
		end := r.Start.Sysctl
		if r.Summary.Sysctl != nil {
			end = *r.Summary.Sysctl
		}
		v := func(name string, a, b int64) string {
			if a == b {
				return fmt.Sprintf("%s=%d", name, b)
			}
			return fmt.Sprintf("%s=%d->%d", name, a, b)
		}
		st := r.Start.Sysctl
		p := fmt.Sprintf("%s, %s, %s: %s drops/s", v("netdev_budget", st.NetdevBudget, end.NetdevBudget),
			v("netdev_budget_usecs", st.NetdevBudgetUsecs, end.NetdevBudgetUsecs),
			v("netdev_max_backlog", st.NetdevMaxBacklog, end.NetdevMaxBacklog), textfmt.Rate(r.Totals.DropsPerSec))
		if r.Totals.Squeezes != nil {
			p += fmt.Sprintf(", %s squeezes/s", textfmt.Rate(perSec(*r.Totals.Squeezes, r.Totals.DurationMs)))
		}
		if len(reports) > 1 {
			p = fmt.Sprintf("[%d] %s", i+1, p)
		}
		if r.Source == SourceIntervals {
			p += " (no summary)"
		}
		parts = append(parts, p)
	}
	return parts
}

// writeHTML wraps the SVG in a page that needs nothing else: no script, no stylesheet link.
func writeHTML(w io.Writer, d *Document, svg []byte) error {
	// The XML prolog is not allowed inside HTML.
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		svg = svg[i:]
	}
	title := html.EscapeString(chartTitle(d.Recordings))
	_, err := fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>%s</title>\n</head>\n<body style=\"margin:0;background:#fff\">\n%s\n</body>\n</html>\n", title, svg)
	return err
}
