// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
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

	"github.com/droptrace/droptrace/internal/textfmt"
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
// Strings from the recordings are escaped as for the terminal (textfmt.Terminal), which
// leaves only characters XML allows; the SVG writer and writeHTML escape the markup.
func WriteChart(w io.Writer, d *Document, html bool) error {
	if len(d.Recordings) == 0 {
		return fmt.Errorf("no recording to draw")
	}
	d = textfmt.Safe(d)
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

func chartSVG(d *Document) ([]byte, error) {
	reports := d.Recordings
	grid := chartLines(reports)
	rows, cols := len(grid), len(reports)

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
			if s := newSeries(r); s.intervals() > 1 {
				p.X.Label.Text += fmt.Sprintf(" (each step: %d intervals)", s.intervals())
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
			ts[i].Label = textfmt.Rate(ts[i].Value)
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
