// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"fmt"
	"os"

	"github.com/droptrace/droptrace/internal/analyze"
	"github.com/droptrace/droptrace/internal/record"
)

// Recording is a recording as analyze reads it.
type Recording struct {
	*analyze.Recording
	// Drops is the number of drop records, typed like the tracer's counters it is checked
	// against.
	Drops uint64
}

// ReadRecording reads a recording with analyze's reader but none of its leniency. analyze
// makes the best of a file left by a killed session; a bench stops droptrace cleanly, so
// anything analyze would warn about (a cut or unknown line, a gap in the intervals, no
// summary) is a fault in the writer, and the counts checked against the file would be wrong.
func ReadRecording(path string) (*Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the recording: %w", err)
	}
	defer f.Close()
	rec, warnings, err := analyze.Read(path, f)
	if err != nil {
		return nil, err // analyze names the file, and the line when there is one
	}
	r := &Recording{Recording: rec, Drops: uint64(rec.DropEvents)}
	// A line-level warning comes first: a summary cut off mid-line says more than its absence.
	if rec.Summary == nil && (len(warnings) == 0 || warnings[0].Line == 0) {
		return r, fmt.Errorf("%s: no summary record: the session did not end cleanly", path)
	}
	if len(warnings) > 0 {
		more := ""
		if len(warnings) > 1 {
			more = fmt.Sprintf(" (and %d more problems)", len(warnings)-1)
		}
		return r, fmt.Errorf("%s%s", warnings[0], more)
	}
	return r, nil
}

// TotalDrops is every drop the summary counted, by key or in the aggregation map's overflow.
func TotalDrops(s *record.Interval) uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n + s.Tracer.AggMapFull
}
