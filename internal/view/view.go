// SPDX-License-Identifier: Apache-2.0

// Package view draws droptrace's live terminal screen: a per-CPU table redrawn every interval,
// and the session summary, which is left on screen after exit so it can be read (or pasted
// into the incident ticket) once tracing has stopped.
package view

import (
	"io"
	"sync"

	"github.com/droptrace/droptrace/internal/record"
)

// Options shape the screen.
type Options struct {
	// Color highlights non-zero drops and squeezes and failed checks with ANSI colors. Without
	// it the output holds no escape code but the screen clear.
	Color bool
	// Width is the terminal's width in columns: 0 means 120, and less than 80 is drawn as 80
	// because the table cannot be read any narrower.
	Width int
	// TopReasons is how many drop reasons each CPU's row names: 0 means 3.
	TopReasons int
}

const (
	defaultWidth      = 120
	minWidth          = 80
	defaultTopReasons = 3

	// clearScreen homes the cursor and erases the screen.
	clearScreen = "\x1b[H\x1b[2J"
)

// View is a session sink that redraws the terminal. It is safe for concurrent use.
type View struct {
	mu    sync.Mutex
	w     io.Writer
	opts  Options
	start *record.Start
	drawn bool
}

// New returns a View drawing on w.
func New(w io.Writer, opts Options) *View {
	return &View{w: w, opts: opts}
}

// Start remembers the start record for the header.
func (v *View) Start(r *record.Start) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.start = r
	return nil
}

// Interval clears the screen and draws the interval.
func (v *View) Interval(r *record.Interval) error { return v.draw(r) }

// Summary draws the summary below the last interval, never cleared.
func (v *View) Summary(r *record.Interval) error { return v.draw(r) }

// Drop ignores drop records: the view shows intervals.
func (v *View) Drop(*record.Drop) error { return nil }

// Flush does nothing: every draw is written at once.
func (v *View) Flush() error { return nil }

func (v *View) draw(iv *record.Interval) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var s string
	switch iv.Type {
	case record.TypeInterval:
		s = clearScreen + Render(v.start, iv, v.opts)
	case record.TypeSummary:
		s = Render(v.start, iv, v.opts)
		if v.drawn {
			// Below the last interval's screen, which stays: the two are read together.
			s = "\n" + s
		}
	default:
		return nil
	}
	v.drawn = true
	_, err := io.WriteString(v.w, s)
	return err
}
