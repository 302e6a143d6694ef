// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot/plotter"

	"github.com/droptrace/droptrace/internal/rank"
	"github.com/droptrace/droptrace/internal/record"
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

// intervals is how many intervals a step holds: per points of as many as the timeline merged.
func (s series) intervals() int {
	if len(s.r.Timeline) == 0 {
		return s.per
	}
	return s.per * s.r.Timeline[0].count()
}

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
			act[c.CPU.CPU] = record.AddSat(act[c.CPU.CPU], c.activity())
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

// pickReasons chooses the reasons stacked one by one: the most frequent over all recordings.
func pickReasons(reports []*Report) (shown []string, others bool) {
	tot := map[string]uint64{}
	for _, r := range reports {
		for _, rs := range r.Reasons {
			tot[rs.Reason] = record.AddSat(tot[rs.Reason], rs.Drops)
		}
	}
	for _, e := range rank.ByCount(tot, -1) {
		shown = append(shown, e.Key)
	}
	if len(shown) > chartReasons {
		return shown[:chartReasons], true
	}
	return shown, false
}

// line is one of a panel's lines before it becomes a plotter: the maximum must be known
// across the row's columns for them to share a scale.
type line struct {
	name   string
	cpu    string // the CPU's label, for lines drawn per CPU
	color  color.Color
	dashed bool
	pts    plotter.XYs
	fill   bool
}

// chartLines computes every panel's lines: grid[row][recording].
func chartLines(reports []*Report) [][][]line {
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
	return grid
}
