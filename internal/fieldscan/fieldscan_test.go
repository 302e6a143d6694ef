// SPDX-License-Identifier: Apache-2.0

package fieldscan

import (
	"bufio"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

type row struct {
	Line   int
	Text   string
	Fields []string
}

func scanAll(s *Scanner) []row {
	var out []row
	for s.Scan() {
		out = append(out, row{s.Line(), s.Text(), s.Fields()})
	}
	return out
}

func TestScanner(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  []row
		lines int // Line() after the last Scan
	}{
		{name: "empty", in: "", lines: 0},
		{name: "only blank lines", in: "\n  \n\t\r\n", lines: 3},
		{
			name:  "fields and line numbers",
			in:    "a b  c\n\n  d\te \n",
			want:  []row{{1, "a b  c", []string{"a", "b", "c"}}, {3, "  d\te ", []string{"d", "e"}}},
			lines: 3,
		},
		{
			name:  "no final newline, CRLF endings",
			in:    "x 1\r\n\r\ny 2",
			want:  []row{{1, "x 1", []string{"x", "1"}}, {3, "y 2", []string{"y", "2"}}},
			lines: 3,
		},
		{
			name:  "trailing blank lines counted",
			in:    "x\n\n\n",
			want:  []row{{1, "x", []string{"x"}}},
			lines: 3,
		},
		{
			// strings.Fields splits at Unicode white space: a line of it is blank too.
			name:  "unicode white space",
			in:    "\u00a0\u0085\nk\u00a0v\n",
			want:  []row{{2, "k\u00a0v", []string{"k", "v"}}},
			lines: 2,
		},
		{
			name:  "invalid UTF-8 is a field",
			in:    "\xff\n",
			want:  []row{{1, "\xff", []string{"\xff"}}},
			lines: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(strings.NewReader(tc.in))
			if got := scanAll(s); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("rows = %+v, want %+v", got, tc.want)
			}
			if s.Line() != tc.lines {
				t.Errorf("Line() after the end = %d, want %d", s.Line(), tc.lines)
			}
			if s.Err() != nil {
				t.Errorf("Err() = %v", s.Err())
			}
			if s.Text() != "" || s.Fields() != nil {
				t.Errorf("after the end Text() = %q, Fields() = %q, want none", s.Text(), s.Fields())
			}
		})
	}
}

func TestFieldsBeforeText(t *testing.T) {
	s := New(strings.NewReader("a b\n"))
	if !s.Scan() {
		t.Fatal("Scan() = false")
	}
	if f := s.Fields(); !reflect.DeepEqual(f, []string{"a", "b"}) {
		t.Errorf("Fields() = %q", f)
	}
	if s.Text() != "a b" {
		t.Errorf("Text() = %q", s.Text())
	}
}

func TestBuffer(t *testing.T) {
	long := strings.Repeat("x", 100)
	s := New(strings.NewReader("a\n" + long + "\n"))
	s.Buffer(make([]byte, 16), 64)
	if !s.Scan() || s.Line() != 1 {
		t.Fatalf("first line: Line() = %d", s.Line())
	}
	if s.Scan() {
		t.Fatal("Scan() = true for a line over the limit")
	}
	if !errors.Is(s.Err(), bufio.ErrTooLong) {
		t.Errorf("Err() = %v, want %v", s.Err(), bufio.ErrTooLong)
	}
	if s.Line() != 1 {
		t.Errorf("Line() after the error = %d, want 1", s.Line())
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	s := New(&failingReader{data: "a\n\nb\n", err: boom})
	var lines []int
	for s.Scan() {
		lines = append(lines, s.Line())
	}
	if !reflect.DeepEqual(lines, []int{1, 3}) {
		t.Errorf("lines = %v, want [1 3]", lines)
	}
	if !errors.Is(s.Err(), boom) {
		t.Errorf("Err() = %v, want %v", s.Err(), boom)
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func ExampleScanner() {
	s := New(strings.NewReader("Udp: InDatagrams RcvbufErrors\n\nUdp: 12 3\n"))
	for s.Scan() {
		fmt.Println(s.Line(), s.Fields())
	}
	// Output:
	// 1 [Udp: InDatagrams RcvbufErrors]
	// 3 [Udp: 12 3]
}

func TestClip(t *testing.T) {
	forty := strings.Repeat("x", 40)
	for in, want := range map[string]string{"": "", "abc": "abc", forty: forty, forty + "y": forty + "..."} {
		if got := Clip(in); got != want {
			t.Errorf("Clip(%q) = %q, want %q", in, got, want)
		}
	}
}
