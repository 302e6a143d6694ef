// SPDX-License-Identifier: Apache-2.0

// Package fieldscan reads the line tables of /proc: white-space separated fields, one record
// per line. It skips blank lines but numbers every line from 1, so a parser's error names the
// line a reader sees in the file.
package fieldscan

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// Scanner steps through the non-blank lines of a reader.
type Scanner struct {
	sc     bufio.Scanner // a value, so that a Scanner that does not escape is not allocated
	line   int
	text   string
	fields []string
	split  bool // fields holds the current line's fields
}

// New returns a Scanner over r with bufio.Scanner's default line limit.
func New(r io.Reader) *Scanner {
	return &Scanner{sc: *bufio.NewScanner(r)}
}

// Buffer sets the initial buffer and the longest line accepted, as bufio.Scanner.Buffer does;
// call it before the first Scan.
func (s *Scanner) Buffer(buf []byte, max int) {
	s.sc.Buffer(buf, max)
}

// Scan advances to the next line that has a field. It returns false at the end of the input
// or on a read error (see Err).
func (s *Scanner) Scan() bool {
	for s.sc.Scan() {
		s.line++
		b := s.sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		s.text, s.fields, s.split = string(b), nil, false
		return true
	}
	s.text, s.fields, s.split = "", nil, true
	return false
}

// Text is the current line as read, without its line ending.
func (s *Scanner) Text() string {
	return s.text
}

// Fields is the current line split at white space, as strings.Fields splits it: never empty
// after a successful Scan, nil after the end. The slice is the caller's to keep.
func (s *Scanner) Fields() []string {
	if !s.split {
		s.fields, s.split = strings.Fields(s.text), true
	}
	return s.fields
}

// Line is the 1-based number of the current line, blank lines counted. After Scan returns
// false it is the number of lines read.
func (s *Scanner) Line() int {
	return s.line
}

// Err is the first read error, as bufio.Scanner.Err reports it (nil at the end of the input).
func (s *Scanner) Err() error {
	return s.sc.Err()
}

// Clip shortens a field that an error message quotes, so that a line of garbage does not
// flood the message.
func Clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
