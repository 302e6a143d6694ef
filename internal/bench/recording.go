// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/droptrace/droptrace/internal/record"
)

// Recording is a droptrace JSON lines file, checked line by line.
type Recording struct {
	Start     *record.Start
	Intervals []record.Interval
	Summary   *record.Interval
	// Drops is the number of drop records; DropsByReason counts them by reason.
	Drops         uint64
	DropsByReason map[string]uint64
	Lines         int
}

// ReadRecording parses every line of a droptrace recording. Any line that is not a complete
// record of a known type is an error: an interrupted writer must not leave half a line.
func ReadRecording(path string) (*Recording, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &Recording{DropsByReason: map[string]uint64{}}
	var perr error
	err = scanLines(f, func(line []byte) bool {
		r.Lines++
		var h record.Header
		if err := json.Unmarshal(line, &h); err != nil {
			perr = fmt.Errorf("%s line %d is not JSON: %v", path, r.Lines, err)
			return false
		}
		switch h.Type {
		case record.TypeStart:
			r.Start = &record.Start{}
			err = json.Unmarshal(line, r.Start)
		case record.TypeInterval:
			var iv record.Interval
			err = json.Unmarshal(line, &iv)
			r.Intervals = append(r.Intervals, iv)
		case record.TypeSummary:
			r.Summary = &record.Interval{}
			err = json.Unmarshal(line, r.Summary)
		case record.TypeDrop:
			// Only the reason is kept: a storm writes millions of these.
			var d struct {
				Reason string `json:"reason"`
			}
			err = json.Unmarshal(line, &d)
			r.Drops++
			r.DropsByReason[d.Reason]++
		default:
			err = fmt.Errorf("unknown record type %q", h.Type)
		}
		if err != nil {
			perr = fmt.Errorf("%s line %d: %v", path, r.Lines, err)
			return false
		}
		return true
	})
	if perr != nil {
		return r, perr
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	if r.Start == nil {
		return r, fmt.Errorf("%s: no start record", path)
	}
	if r.Summary == nil {
		return r, fmt.Errorf("%s: no summary record: the session did not end cleanly", path)
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
