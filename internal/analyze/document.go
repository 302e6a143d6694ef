// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"encoding/json"
	"io"
)

// NewDocument analyzes recordings read with Read, in the order given, and compares them when
// there are several. warnings are Read's, kept in the document so that the JSON output says
// which lines were not used.
func NewDocument(recs []*Recording, warnings []Warning) *Document {
	d := &Document{Version: Version, Warnings: warnings, Recordings: []*Report{}}
	if d.Warnings == nil {
		d.Warnings = []Warning{}
	}
	for _, rec := range recs {
		d.Recordings = append(d.Recordings, Analyze(rec))
	}
	if len(d.Recordings) > 1 {
		d.Comparison = Compare(d.Recordings)
	}
	return d
}

// WriteJSON writes the document as one indented JSON document (docs/analyze.md).
func WriteJSON(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(d)
}
