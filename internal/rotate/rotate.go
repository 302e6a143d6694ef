// SPDX-License-Identifier: Apache-2.0

// Package rotate writes a line-oriented file that is rotated by size: FILE becomes FILE.1,
// FILE.1 becomes FILE.2, and so on, keeping at most Keep old files. A rotation happens only
// between lines, never inside one, so every file is valid JSON lines on its own; a file
// exceeds MaxSize only when a single line (with the header) is larger than MaxSize.
package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Writer is a size-rotated file. It is safe for concurrent use. Bytes written without a
// trailing newline are held until the line is complete (or Close), so that no line is split
// between files.
type Writer struct {
	path    string
	dir     *Dir   // path's directory: every open, rename and removal is relative to it
	base    string // path's name in dir
	maxSize int64
	keep    int

	mu      sync.Mutex
	f       *os.File
	size    int64  // bytes in the current file
	lines   int    // lines in the current file after the header
	partial []byte // the start of a line not yet complete
	header  []byte
	// needHeader: the header is still to be written at the top of the current file.
	needHeader bool
	// cut: the file ends inside a line (a short write that could not be taken back).
	cut bool
	// shifted: a rotation shifted the files but has not opened the new one yet.
	shifted bool
	err     error // os.ErrClosed once closed
}

// Open opens path for writing, rotating an existing non-empty file first so that nothing a
// previous run wrote is overwritten. maxSize <= 0 disables rotation by size (the file is still
// rotated at open); keep is how many old files to keep (0: none).
func Open(path string, maxSize int64, keep int) (*Writer, error) {
	if keep < 0 {
		return nil, fmt.Errorf("keep %d: must not be negative", keep)
	}
	dir, err := OpenDir(path)
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, dir: dir, base: filepath.Base(path), maxSize: maxSize, keep: keep}
	// A link or a file of another user is refused, not rotated: renaming it to FILE.1 would
	// keep it where droptrace's next run, or a reader, takes it for a recording.
	st, ok, err := dir.lstat(w.base)
	if err == nil && ok {
		err = dir.check(w.base, &st, false)
	}
	if err == nil && ok && st.Size > 0 {
		err = w.shift()
	}
	if err == nil {
		err = w.open()
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return w, nil
}

// SetHeader sets a line (newline included) written at the top of every file opened by a later
// rotation: droptrace repeats its start record so that each file says what it was recorded on.
func (w *Writer) SetHeader(line []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.header = bytes.Clone(line)
}

// Write writes p, rotating between lines when the file would grow past its maximum size. A
// line that cannot be written (a full disk, a failed rotation) is not written at all and Write
// returns the bytes of the lines before it; the next Write tries again.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for done < len(p) {
		i := bytes.IndexByte(p[done:], '\n')
		if i < 0 {
			w.partial = append(w.partial, p[done:]...)
			break
		}
		line := p[done : done+i+1]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		if err := w.writeLine(line); err != nil {
			var cut *cutError
			if errors.As(err, &cut) {
				done += cut.n
			}
			return done, err
		}
		done += i + 1
	}
	return len(p), nil
}

// WriteRecord writes rec, a unit of a binary file (a packet's pcapng blocks) that is never split
// between files, whole or not at all. When rec would take the file past its maximum size, the
// file is rotated first and the new one starts with header (the pcapng section header and
// interface blocks); rec is not scanned for lines. A Writer is written by lines or by records,
// not both.
func (w *Writer) WriteRecord(rec, header []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.writeUnit(rec, header)
}

// writeLine writes one complete line; w.mu is held.
func (w *Writer) writeLine(line []byte) error { return w.writeUnit(line, w.header) }

// writeUnit writes a line or a record, after the header when it opens a new file; w.mu is held.
// A unit is written whole or not at all (put), so a failed write (a full disk) leaves the file
// ending with a whole unit and the next write may succeed.
func (w *Writer) writeUnit(b, header []byte) error {
	// A rotation that failed part way (w.f is nil) is finished first.
	if w.f == nil || w.maxSize > 0 && w.lines > 0 && !w.cut && w.size+int64(len(b)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	if w.needHeader {
		if err := w.put(header); err != nil {
			return err
		}
		w.needHeader = false
	}
	if err := w.put(b); err != nil {
		return err
	}
	w.lines++
	return nil
}

// put writes b; w.mu is held. The bytes of a short write are truncated back off the file,
// so that it never ends inside a line. When that fails too, the line stays cut: the caller
// is told of the bytes written (ErrCut), so that it can write the rest of the line, and the
// file is not rotated before it has.
func (w *Writer) put(b []byte) error {
	m, err := w.f.Write(b)
	if err == nil {
		w.size += int64(m)
		w.cut = false
		return nil
	}
	if m == 0 {
		return err
	}
	if terr := w.f.Truncate(w.size); terr == nil {
		if _, terr = w.f.Seek(w.size, io.SeekStart); terr == nil {
			return err
		}
	}
	w.size += int64(m)
	w.cut = true
	return &cutError{n: m, err: err}
}

// ErrCut is returned, wrapped, when a write was cut short and its bytes could not be taken
// back: the count Write returns includes them.
var ErrCut = errors.New("line cut by a short write")

type cutError struct {
	n   int
	err error
}

func (e *cutError) Error() string   { return fmt.Sprintf("%v: %v", ErrCut, e.err) }
func (e *cutError) Unwrap() []error { return []error{ErrCut, e.err} }

// rotate closes the current file, shifts the old ones and opens a new file with the header.
// When a step fails, the next line's rotate goes on from the step that failed: the line is
// lost, not the rest of the session.
func (w *Writer) rotate() error {
	if err := w.closeFile(); err != nil {
		return err
	}
	if !w.shifted {
		if err := w.shift(); err != nil {
			return err
		}
		w.shifted = true
	}
	if err := w.open(); err != nil {
		return err
	}
	w.shifted = false
	w.needHeader = true // a line's (SetHeader) or a record's (WriteRecord): empty writes nothing
	return nil
}

// shift renames path to path.1, path.1 to path.2 and so on, dropping what falls past keep.
// Names are relative to the held directory and neither renames nor removals follow links, so
// a link planted at FILE.i is moved or removed itself and never redirects a write.
func (w *Writer) shift() error {
	if w.keep == 0 {
		if err := w.dir.Remove(w.base); err != nil {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
		return nil
	}
	if err := w.dir.Remove(w.name(w.keep)); err != nil {
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	for i := w.keep - 1; i >= 0; i-- {
		if err := w.dir.rename(w.name(i), w.name(i+1)); err != nil {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
	}
	return nil
}

// name is the i-th file in the directory: the file itself for 0, FILE.i for older ones.
func (w *Writer) name(i int) string {
	return name(w.base, i)
}

func name(path string, i int) string {
	if i == 0 {
		return path
	}
	return path + "." + strconv.Itoa(i)
}

// Files lists the files of path's rotated set that exist, oldest first: path.N ... path.1,
// then path. It lists every path.<n> in the directory, also those past a Writer's keep, so
// that a reader sees all that is on disk.
func Files(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("list rotated files of %s: %w", path, err)
	}
	prefix := filepath.Base(path) + "."
	var old []int
	current := false
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if e.Name() == filepath.Base(path) {
			current = true
			continue
		}
		digits, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		// Only the names the Writer makes: "out.jsonl.2", not "out.jsonl.02" or "out.jsonl.0".
		if n, err := strconv.Atoi(digits); err == nil && n > 0 && strconv.Itoa(n) == digits {
			old = append(old, n)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(old)))
	out := make([]string, 0, len(old)+1)
	for _, n := range old {
		out = append(out, name(path, n))
	}
	if current {
		out = append(out, path)
	}
	return out, nil
}

func (w *Writer) open() error {
	f, err := w.dir.Create(w.base)
	if err != nil {
		return err
	}
	w.f, w.size, w.lines = f, 0, 0
	return nil
}

// closeFile syncs and closes the current file: a rotated file is complete on disk.
func (w *Writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", w.path, err)
	}
	return f.Close()
}

// Sync writes a held partial line and fsyncs the current file.
func (w *Writer) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushPartial(); err != nil {
		return err
	}
	if w.f == nil {
		return os.ErrClosed
	}
	return w.f.Sync()
}

func (w *Writer) flushPartial() error {
	if len(w.partial) == 0 || w.f == nil {
		return nil
	}
	m, err := w.f.Write(w.partial)
	w.size += int64(m)
	w.partial = w.partial[:0]
	return err
}

// Close writes a held partial line, syncs and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.flushPartial()
	if cerr := w.closeFile(); err == nil {
		err = cerr
	}
	if w.err == nil {
		w.err = os.ErrClosed
	}
	if derr := w.dir.Close(); err == nil {
		err = derr
	}
	return err
}
