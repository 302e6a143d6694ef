// SPDX-License-Identifier: Apache-2.0

package rotate

import (
	"bytes"
	"strings"
	"testing"
)

// Records are binary: a newline inside one splits nothing, a rotation falls between records,
// and each file after a rotation starts with the header given with the record that opened it.
func TestRecordsAreNeverSplit(t *testing.T) {
	path, w := openTemp(t, 64, 3)
	first := []byte("SHB\nIDB0|")
	recs := [][]byte{append(first, "a\n\x00\n"...), []byte("b" + strings.Repeat("\n", 60)),
		[]byte("IDB1|c\n"), []byte("d")}
	headers := [][]byte{nil, first, first, []byte("SHB\nIDB0|IDB1|")}
	for i, r := range recs {
		if err := w.WriteRecord(r, headers[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := files(t, path, 3)
	want := [][]byte{recs[0], append(bytes.Clone(first), recs[1]...), append(bytes.Clone(first), append(recs[2], recs[3]...)...)}
	if len(got) != len(want) {
		t.Fatalf("%d files %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("file %d: %q, want %q", i, got[i], want[i])
		}
	}
}
