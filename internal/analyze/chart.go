// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The chart answers, at a glance: which CPU lost packets when, whether NET_RX was squeezed
// or backlogs overflowed there, and for which reasons. One column per recording, so a
// before/after pair reads left to right with the same scales; one row per question.
const (
	chartCPUs    = 6 // CPUs drawn one by one, the busiest; the rest are summed
	chartReasons = 7 // reasons stacked one by one, the most frequent; the rest are summed
)

// Series titles, also what tests look for.
const (
	rowDrops    = "Drops per CPU (traced, on the CPU that freed them)"
	rowSoftnet  = "Squeezes (solid) and backlog overflows (dashed) per CPU"
	rowReasons  = "Drops by reason (stacked)"
	xLabel      = "seconds since the recording started"
	otherCPUs   = "other busy CPUs"
	otherReason = "other reasons"
)

// Okabe-Ito, without its yellow (too pale on white): CPU lines stay apart for color-blind
// readers too.
var cpuColors = []color.RGBA{
	{0x00, 0x72, 0xb2, 0xff}, {0xd5, 0x5e, 0x00, 0xff}, {0x00, 0x9e, 0x73, 0xff},
	{0xcc, 0x79, 0xa7, 0xff}, {0x56, 0xb4, 0xe9, 0xff}, {0xe6, 0x9f, 0x00, 0xff},
	{0x44, 0x44, 0x44, 0xff},
}

// Tableau 10, for stacked areas that must stay apart.
var reasonColors = []color.RGBA{
	{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0xe1, 0x57, 0x59, 0xff},
	{0x76, 0xb7, 0xb2, 0xff}, {0x59, 0xa1, 0x4f, 0xff}, {0xed, 0xc9, 0x48, 0xff},
	{0xb0, 0x7a, 0xa1, 0xff}, {0xba, 0xb0, 0xac, 0xff},
}

func sans(size vg.Length, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans"}
	if bold {
		f.Weight = xfont.WeightBold
	}
	return font.From(f, size)
}

// WriteChart draws the document's recordings as a self-contained SVG (fonts by name, with
// fallbacks; nothing fetched), or as an HTML page holding that SVG when html is set.
func WriteChart(w io.Writer, d *Document, html bool) error {
	if len(d.Recordings) == 0 {
		return fmt.Errorf("no recording to draw")
	}
	svg, err := chartSVG(d)
	if err != nil {
		return err
	}
	if html {
		return writeHTML(w, d, svg)
	}
	_, err = w.Write(svg)
	return err
}

// series is what one recording contributes to the chart: its intervals, grouped into steps
// of per consecutive intervals when there are more than maxSteps, so that an hour of
// one-second intervals stays a chart of a few hundred kilobytes.
type series struct {
	r   *Report
	per int
	// x are the step boundaries in seconds since start: x[0] is the first interval's start,
	// x[i+1] the end of step i.
	x []float64
	// dur is each step's length in ms.
	dur []int64
}

const maxSteps = 600

func newSeries(r *Report) series {
	s := series{r: r, per: max(1, (len(r.Timeline)+maxSteps-1)/maxSteps)}
	for i, p := range r.Timeline {
		if i == 0 {
			s.x = append(s.x, math.Max(0, float64(p.OffsetMs-p.DurationMs)/1000))
		}
		if i%s.per == 0 {
			s.x = append(s.x, 0)
			s.dur = append(s.dur, 0)
		}
		s.x[len(s.x)-1] = float64(p.OffsetMs) / 1000
		s.dur[len(s.dur)-1] += p.DurationMs
	}
	return s
}

// counts returns a per-step accumulator for counts of the interval at index i.
func (s series) counts() []float64 { return make([]float64, len(s.dur)) }

func (s series) step(i int) int { return i / s.per }

// steps turns per-step counts into rates, drawn over the step they were counted in.
func (s series) steps(counts []float64) plotter.XYs {
	pts := make(plotter.XYs, 0, len(counts)+1)
	if len(counts) == 0 {
		return pts
	}
	rate := func(i int) float64 {
		if s.dur[i] <= 0 {
			return 0
		}
		return counts[i] * 1000 / float64(s.dur[i])
	}
	// PreStep draws each value over the step that ends at its x, as the counts were
	// measured, so the first value also needs the step's start.
	pts = append(pts, plotter.XY{X: s.x[0], Y: rate(0)})
	for i := range counts {
		pts = append(pts, plotter.XY{X: s.x[i+1], Y: rate(i)})
	}
	return pts
}

// pickCPUs chooses the CPUs drawn one by one: the busiest over all recordings, by drops,
// backlog overflows and squeezes together. others is how many more busy CPUs are summed into
// one line; CPUs where nothing happened are left out, since their lines would lie on zero.
func pickCPUs(reports []*Report) (shown []int, others int) {
	act := map[int]uint64{}
	for _, r := range reports {
		for _, c := range r.CPUs {
			a := c.DropsTotal
			if c.Softnet != nil {
				a += c.Softnet.Dropped + c.Softnet.TimeSqueeze
			}
			act[c.CPU.CPU] += a
		}
	}
	ids := sortedInts(act)
	sort.SliceStable(ids, func(i, j int) bool { return act[ids[i]] > act[ids[j]] })
	busy := ids
	for len(busy) > 0 && act[busy[len(busy)-1]] == 0 {
		busy = busy[:len(busy)-1]
	}
	if len(busy) == 0 {
		// Nothing happened anywhere: flat lines say so better than an empty plot.
		busy = ids
	}
	shown = busy[:min(len(busy), chartCPUs)]
	others = len(busy) - len(shown)
	shown = append([]int(nil), shown...)
	sort.Ints(shown)
	return shown, others
}

func pickReasons(reports []*Report) (shown []string, others bool) {
	tot := map[string]uint64{}
	for _, r := range reports {
		for _, rs := range r.Reasons {
			tot[rs.Reason] += rs.Drops
		}
	}
	for k, v := range tot {
		if v > 0 {
			shown = append(shown, k)
		}
	}
	sort.Slice(shown, func(i, j int) bool {
		if tot[shown[i]] != tot[shown[j]] {
			return tot[shown[i]] > tot[shown[j]]
		}
		return shown[i] < shown[j]
	})
	if len(shown) > chartReasons {
		return shown[:chartReasons], true
	}
	return shown, false
}

// rowData is one panel's lines before they become plotters: the maximum must be known
// across the row's columns for them to share a scale.
type line struct {
	name   string
	cpu    string // the CPU's label, for lines drawn per CPU
	color  color.Color
	dashed bool
	pts    plotter.XYs
	fill   bool
}

func chartSVG(d *Document) ([]byte, error) {
	reports := d.Recordings
	cpus, otherC := pickCPUs(reports)
	reasons, otherR := pickReasons(reports)
	cpuColor := func(i int) color.Color { return cpuColors[i%len(cpuColors)] }

	rows := 3
	cols := len(reports)
	grid := make([][][]line, rows)
	for j := range grid {
		grid[j] = make([][]line, cols)
	}
	for i, r := range reports {
		s := newSeries(r)
		shown := map[int]int{}
		for k, id := range cpus {
			shown[id] = k
		}
		drops := make([][]float64, len(cpus)+1)
		sq := make([][]float64, len(cpus)+1)
		bl := make([][]float64, len(cpus)+1)
		for k := range drops {
			drops[k], sq[k], bl[k] = s.counts(), s.counts(), s.counts()
		}
		hasSoftnet := false
		for t, p := range r.Timeline {
			st := s.step(t)
			for _, c := range p.CPUs {
				k, ok := shown[c.CPU]
				if !ok {
					k = len(cpus)
				}
				drops[k][st] += float64(c.Drops)
				if c.Squeezes != nil {
					hasSoftnet = true
					sq[k][st] += float64(*c.Squeezes)
					bl[k][st] += float64(*c.BacklogDropped)
				}
			}
		}
		names := make([]string, 0, len(cpus)+1)
		for _, id := range cpus {
			names = append(names, fmt.Sprintf("CPU %d", id))
		}
		names = append(names, fmt.Sprintf("%d %s (sum)", otherC, otherCPUs))
		for k := range names {
			if k == len(cpus) && otherC == 0 {
				continue
			}
			if r.Start.Mode != "counters-only" {
				grid[0][i] = append(grid[0][i], line{name: names[k], color: cpuColor(k), pts: s.steps(drops[k])})
			}
			if hasSoftnet {
				grid[1][i] = append(grid[1][i], line{name: names[k] + " squeezes", cpu: names[k], color: cpuColor(k), pts: s.steps(sq[k])})
				grid[1][i] = append(grid[1][i], line{name: names[k] + " backlog overflows", cpu: names[k], color: cpuColor(k), dashed: true, pts: s.steps(bl[k])})
			}
		}
		// Stacked: each reason's line is the sum of it and those below it, drawn top
		// first so that each fill covers only its own band.
		stackNames := append(append([]string(nil), reasons...), otherReason)
		cum := make([][]float64, len(stackNames))
		for k := range cum {
			cum[k] = s.counts()
		}
		idx := map[string]int{}
		for k, name := range reasons {
			idx[name] = k
		}
		for t, p := range r.Timeline {
			for reason, v := range p.Drops {
				k, ok := idx[reason]
				if !ok {
					k = len(reasons)
				}
				cum[k][s.step(t)] += float64(v)
			}
		}
		for k := 1; k < len(cum); k++ {
			for t := range cum[k] {
				cum[k][t] += cum[k-1][t]
			}
		}
		for k := len(stackNames) - 1; k >= 0; k-- {
			if k == len(reasons) && !otherR {
				continue
			}
			grid[2][i] = append(grid[2][i], line{name: stackNames[k], color: reasonColors[k%len(reasonColors)], fill: true, pts: s.steps(cum[k])})
		}
	}

	const (
		colW    = 6.2 * vg.Inch
		legendW = 2.7 * vg.Inch
		rowH    = 2.5 * vg.Inch
		lineH   = 0.2 * vg.Inch
	)
	// One subtitle line per recording: its settings and outcome.
	titleH := 0.45*vg.Inch + lineH*vg.Length(len(reports))
	width := colW*vg.Length(cols) + legendW
	height := rowH*vg.Length(rows) + titleH
	canvas := vgsvg.New(width, height)
	dc := draw.New(canvas)
	// A white page: viewers with dark backgrounds would otherwise show black text on black.
	dc.FillPolygon(color.White, []vg.Point{{X: 0, Y: 0}, {X: width, Y: 0}, {X: width, Y: height}, {X: 0, Y: height}})

	titles := []string{rowDrops, rowSoftnet, rowReasons}
	yLabels := []string{"drops/s", "per second (softnet_stat)", "drops/s"}
	plots := make([][]*plot.Plot, rows)
	legends := make([]plot.Legend, rows)
	for j := range rows {
		ymax := 0.0
		for i := range cols {
			for _, l := range grid[j][i] {
				for _, pt := range l.pts {
					ymax = math.Max(ymax, pt.Y)
				}
			}
		}
		if ymax == 0 {
			ymax = 1
		}
		// Headroom, and room at the top for the labels of sysctl changes.
		ymax *= 1.08
		if j == 0 && anyChanges(reports) {
			ymax *= 1.15
		}
		legends[j] = plot.NewLegend()
		legends[j].TextStyle.Font = sans(9, false)
		legends[j].Top, legends[j].Left = true, true
		legends[j].ThumbnailWidth = 0.3 * vg.Inch
		legends[j].Padding = vg.Points(3)
		seen := map[string]bool{}
		plots[j] = make([]*plot.Plot, cols)
		for i, r := range reports {
			p := plot.New()
			styled(p)
			p.Title.Text = titles[j]
			if cols > 1 {
				p.Title.Text = fmt.Sprintf("[%d] %s", i+1, titles[j])
			}
			p.X.Label.Text = xLabel
			if s := newSeries(r); s.per > 1 {
				p.X.Label.Text += fmt.Sprintf(" (each step: %d intervals)", s.per)
			}
			p.Y.Label.Text = yLabels[j]
			p.Y.Min, p.Y.Max = 0, ymax
			p.Y.Tick.Marker = rateTicks{}
			p.X.Tick.Marker = secondTicks{}
			if s := newSeries(r); len(s.x) > 0 {
				p.X.Min, p.X.Max = 0, s.x[len(s.x)-1]
			}
			g := plotter.NewGrid()
			g.Vertical.Color, g.Horizontal.Color = color.Gray{Y: 0xe4}, color.Gray{Y: 0xe4}
			p.Add(g)
			for _, l := range grid[j][i] {
				pl, err := plotter.NewLine(l.pts)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", r.File, l.name, err)
				}
				pl.StepStyle = plotter.PreStep
				pl.Color = l.color
				pl.Width = vg.Points(1.6)
				if l.dashed {
					pl.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
				}
				if l.fill {
					pl.FillColor = l.color
					pl.Color = darker(l.color)
					pl.Width = vg.Points(0.6)
				}
				p.Add(pl)
				// One legend per row, since colors mean the same in every column. The
				// softnet row says its two line styles once, then the CPUs' colors.
				key, thumb := l.name, plot.Thumbnailer(pl)
				if j == 1 {
					key = l.cpu
					thumb = &plotter.Line{LineStyle: draw.LineStyle{Color: l.color, Width: pl.Width}}
				}
				if !seen[key] {
					if j == 1 && len(seen) == 0 {
						gray := color.Gray{Y: 0x55}
						legends[j].Add("squeezes", &plotter.Line{LineStyle: draw.LineStyle{Color: gray, Width: pl.Width}})
						legends[j].Add("backlog overflows", &plotter.Line{LineStyle: draw.LineStyle{Color: gray, Width: pl.Width,
							Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}})
					}
					seen[key] = true
					legends[j].Add(key, thumb)
				}
			}
			if len(grid[j][i]) == 0 {
				why := "no traced drops: counters-only recording"
				if j == 1 {
					why = "softnet_stat was not readable"
				}
				p.Title.Text += " - " + why
			}
			if err := changeMarkers(p, r, ymax, j == 0); err != nil {
				return nil, err
			}
			plots[j][i] = p
		}
	}

	body := draw.Crop(dc, 0, -legendW, 0, -titleH)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 0.25 * vg.Inch, PadY: 0.2 * vg.Inch,
		PadTop: 0.05 * vg.Inch, PadBottom: 0.05 * vg.Inch, PadLeft: 0.1 * vg.Inch, PadRight: 0.1 * vg.Inch}
	canvases := plot.Align(plots, tiles, body)
	for j := range plots {
		for i := range plots[j] {
			plots[j][i].Draw(canvases[j][i])
		}
		c := canvases[j][cols-1]
		lc := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: width - legendW + 0.1*vg.Inch, Y: c.Min.Y},
			Max: vg.Point{X: width - 0.05*vg.Inch, Y: c.Max.Y - 0.3*vg.Inch},
		}}
		legends[j].Draw(lc)
	}
	title := text.Style{Font: sans(15, true), Handler: plot.DefaultTextHandler, Color: color.Black}
	sub := text.Style{Font: sans(10, false), Handler: plot.DefaultTextHandler, Color: color.Gray{Y: 0x40}}
	dc.FillText(title, vg.Point{X: 0.15 * vg.Inch, Y: height - 0.3*vg.Inch}, chartTitle(reports))
	for i, line := range chartSubtitles(reports) {
		dc.FillText(sub, vg.Point{X: 0.15 * vg.Inch, Y: height - 0.5*vg.Inch - lineH*vg.Length(i)}, line)
	}

	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	return fontFallbacks(buf.Bytes()), nil
}

// fontFallbacks lets viewers without the Liberation fonts use their metric-compatible
// twins (Arial, Helvetica) instead of a serif default, so that text keeps the width the
// layout measured; embedding the fonts would add a megabyte to every chart.
func fontFallbacks(svg []byte) []byte {
	return bytes.ReplaceAll(svg, []byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
}

func styled(p *plot.Plot) {
	p.Title.TextStyle.Font = sans(11, true)
	p.Title.Padding = vg.Points(4)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(9, false)
		a.Tick.Label.Font = sans(8.5, false)
		a.Color = color.Gray{Y: 0x60}
		a.Tick.Color = color.Gray{Y: 0x60}
	}
	p.X.Padding, p.Y.Padding = 0, 0
}

func darker(c color.Color) color.Color {
	r, g, b, _ := c.RGBA()
	return color.RGBA{uint8(r >> 8 * 7 / 10), uint8(g >> 8 * 7 / 10), uint8(b >> 8 * 7 / 10), 0xff}
}

// rateTicks labels a rate axis the way the text report writes rates (1.5k, 2M).
type rateTicks struct{}

func (rateTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = compact(ts[i].Value)
		}
	}
	return ts
}

// secondTicks labels seconds without trailing zeros (2.5, not 2.50).
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}

// changeMarkers draws a vertical line where net.core sysctls changed during the session, and
// in the first row says which.
func changeMarkers(p *plot.Plot, r *Report, ymax float64, labelled bool) error {
	start := time.Time(r.Start.Time)
	for _, pt := range r.Timeline {
		byX := map[float64][]string{}
		var xs []float64
		for _, c := range pt.SysctlChanges {
			// "netdev_budget 4->300, netdev_max_backlog 10->1000 at 03:14:07.123": drawn
			// where it happened, one setting a line to keep the label narrow.
			what, at, _ := strings.Cut(c, " at ")
			x := changeTime(time.Time(pt.Time), at).Sub(start).Seconds()
			if _, ok := byX[x]; !ok {
				xs = append(xs, x)
			}
			byX[x] = append(byX[x], strings.Split(what, ", ")...)
		}
		for _, x := range xs {
			l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: ymax}})
			if err != nil {
				return err
			}
			l.Color = color.Gray{Y: 0x50}
			l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(l)
			if !labelled {
				continue
			}
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: x, Y: ymax * 0.98}}, Labels: []string{strings.Join(byX[x], "\n")}})
			if err != nil {
				return err
			}
			for i := range lb.TextStyle {
				lb.TextStyle[i].Font = sans(8.5, false)
				lb.TextStyle[i].Color = color.Gray{Y: 0x30}
				lb.TextStyle[i].YAlign = draw.YTop
				// Written on the side of the line with more room, so it stays inside the plot.
				if x > (p.X.Min+p.X.Max)/2 {
					lb.TextStyle[i].XAlign = draw.XRight
					lb.Offset.X = -vg.Points(3)
				} else {
					lb.Offset.X = vg.Points(3)
				}
			}
			p.Add(lb)
		}
	}
	return nil
}

// changeTime places a change's time of day ("15:04:05.000", UTC) on the date of the interval
// that reported it; the end of that interval when it cannot be read.
func changeTime(end time.Time, clock string) time.Time {
	end = end.UTC()
	c, err := time.Parse("15:04:05.000", clock)
	if err != nil {
		return end
	}
	t := time.Date(end.Year(), end.Month(), end.Day(), c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), time.UTC)
	if t.After(end) {
		t = t.AddDate(0, 0, -1) // the interval spanned midnight
	}
	return t
}

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
		return fmt.Sprintf("droptrace: %s on %s, %s UTC, %s", filepath.Base(r.File), orDash(r.Start.Hostname),
			time.Time(r.Start.Time).UTC().Format("2006-01-02 15:04:05"), dur(r.Totals.DurationMs))
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
			v("netdev_max_backlog", st.NetdevMaxBacklog, end.NetdevMaxBacklog), compact(r.Totals.DropsPerSec))
		if r.Totals.Squeezes != nil {
			p += fmt.Sprintf(", %s squeezes/s", compact(perSec(*r.Totals.Squeezes, r.Totals.DurationMs)))
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
