// SPDX-License-Identifier: Apache-2.0

package record

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// A drop's strings come from the host (interface names may hold ESC): its line must escape
// every control character exactly as encoding/json does, so that a JSON line never carries a
// raw control byte and the hand-written encoder never differs from the reflective one.
func TestDropEscapesControlsLikeEncodingJSON(t *testing.T) {
	var cases []string
	for b := range 256 {
		cases = append(cases, string([]byte{byte(b)}), "eth"+string([]byte{byte(b)})+"0")
	}
	for r := rune(0x7f); r <= 0x9f; r++ {
		cases = append(cases, "c1 "+string(r))
	}
	cases = append(cases, "\x1b]0;PWN\x07\x1b[2J", "\u2028\u2029", "\ufeff\ufffe\uffff", "\xed\xa0\x80", "<&>")
	for _, s := range cases {
		d := &Drop{Header: Header{Type: TypeDrop}, Reason: s, Location: s, Ifname: s, Src: s}
		got, want := writeOne(t, d), encodeStd(t, d)
		if got != want {
			t.Errorf("%q:\nwriter:        %s\nencoding/json: %s", s, got, want)
		}
		line := strings.TrimSuffix(got, "\n")
		for i := 0; i < len(line); i++ {
			if line[i] < 0x20 {
				t.Errorf("%q: raw control byte %#x in %q", s, line[i], line)
			}
		}
		// Valid UTF-8 comes back exactly; encoding/json writes a byte that is not UTF-8 as
		// U+FFFD, as JSON strings are Unicode.
		var back Drop
		if err := json.Unmarshal([]byte(line), &back); err != nil {
			t.Errorf("%q: line does not parse: %v", s, err)
		} else if utf8.ValidString(s) && back.Ifname != s {
			t.Errorf("%q: read back as %q", s, back.Ifname)
		}
	}
}
