// SPDX-License-Identifier: Apache-2.0

package textfmt

import "strings"

// Column is one column of a Table.
type Column struct {
	// Width is fixed, longer cells clipped to it; 0 makes the column as wide as its widest cell.
	Width int
	// Gap is the blanks before the column; the first column's gap indents the table.
	Gap int
	// Left aligns the column left; numbers are aligned right.
	Left bool
}

// Group names a run of columns, First to Last inclusive, in a ruled line above the first row,
// so the reader knows which numbers come from which source.
type Group struct {
	Name        string
	First, Last int
}

// Table aligns rows of cells in columns. A row may have fewer cells than there are columns.
type Table struct {
	Columns []Column
	Groups  []Group
	// Style, when set, decorates a padded cell, e.g. with color; it must not change how many
	// columns the cell takes.
	Style func(row, col int, cell string) string
	rows  [][]string
	notes map[int][]string
}

// Columns returns n columns as wide as their cells, gap blanks before each, those in left
// aligned left.
func Columns(n, gap int, left ...int) []Column {
	cols := make([]Column, n)
	for i := range cols {
		cols[i].Gap = gap
	}
	for _, i := range left {
		cols[i].Left = true
	}
	return cols
}

// Row adds a row.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Note adds a line under the last row, indented as the table but outside its columns: it
// widens none of them.
func (t *Table) Note(s string) {
	if t.notes == nil {
		t.notes = map[int][]string{}
	}
	i := len(t.rows) - 1
	t.notes[i] = append(t.notes[i], s)
}

// Lines lays the table out, the group line first when there are groups. Lines may end in
// blanks.
func (t *Table) Lines() []string {
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = c.Width
	}
	for _, r := range t.rows {
		for i, c := range r {
			if t.Columns[i].Width == 0 {
				widths[i] = max(widths[i], Width(c))
			}
		}
	}
	var out []string
	if len(t.Groups) > 0 {
		out = append(out, t.groupLine(widths))
	}
	indent := ""
	if len(t.Columns) > 0 {
		indent = strings.Repeat(" ", t.Columns[0].Gap)
	}
	for ri, r := range t.rows {
		var b strings.Builder
		for i, c := range r {
			col := t.Columns[i]
			b.WriteString(strings.Repeat(" ", col.Gap))
			c = pad(Clip(c, widths[i]), widths[i], col.Left)
			if t.Style != nil {
				c = t.Style(ri, i, c)
			}
			b.WriteString(c)
		}
		out = append(out, b.String())
		for _, n := range t.notes[ri] {
			out = append(out, indent+n)
		}
	}
	return out
}

func pad(s string, w int, left bool) string {
	fill := strings.Repeat(" ", max(w-Width(s), 0))
	if left {
		return s + fill
	}
	return fill + s
}

func (t *Table) groupLine(widths []int) string {
	starts := make([]int, len(t.Columns))
	pos := 0
	for i, c := range t.Columns {
		pos += c.Gap
		starts[i] = pos
		pos += widths[i]
	}
	var b strings.Builder
	for _, g := range t.Groups {
		from, to := starts[g.First], starts[g.Last]+widths[g.Last]
		for b.Len() < from {
			b.WriteByte(' ')
		}
		b.WriteString(Rule(g.Name, to-from))
	}
	return b.String()
}

// Rule centers name in a dashed rule w columns wide, clipping the name when it is wider.
func Rule(name string, w int) string {
	name = " " + name + " "
	if len(name) > w {
		return Clip(strings.TrimSpace(name), w)
	}
	left := (w - len(name)) / 2
	return strings.Repeat("-", left) + name + strings.Repeat("-", w-left-len(name))
}
