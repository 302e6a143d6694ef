// SPDX-License-Identifier: Apache-2.0

// Package hostfs is the root of the host filesystem droptrace reads /proc and /sys under. Every
// reader of the host takes an FS, so tests point it at a fixture tree and no path is a package
// variable or a literal joined elsewhere.
package hostfs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FS reads files under one root directory: "/" for the host itself.
type FS struct{ root string }

// New returns an FS rooted at root.
func New(root string) FS { return FS{root: root} }

// Host is the running host's filesystem.
func Host() FS { return New("/") }

// IsHost says whether f is the running host's own filesystem (rooted at "/"), where
// descriptors, pids and sockets found in /proc are live.
func (f FS) IsHost() bool { return f.root == "" || filepath.Clean(f.root) == "/" }

// Path is where name, given from the root ("/proc/interrupts" or "proc/interrupts"), lives.
// A zero FS is rooted at "/".
func (f FS) Path(name string) string {
	root := f.root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, name)
}

// ReadFile reads a whole file.
func (f FS) ReadFile(name string) ([]byte, error) { return os.ReadFile(f.Path(name)) }

// Open opens a file for reading, for files too large to read whole (/proc/kallsyms).
func (f FS) Open(name string) (*os.File, error) { return os.Open(f.Path(name)) }

// Stat says whether and what name is.
func (f FS) Stat(name string) (fs.FileInfo, error) { return os.Stat(f.Path(name)) }

// ReadDir lists a directory.
func (f FS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(f.Path(name)) }

// Readlink reads a symbolic link.
func (f FS) Readlink(name string) (string, error) { return os.Readlink(f.Path(name)) }

// WriteFile writes a file that exists (a sysctl, a tunable).
func (f FS) WriteFile(name string, data []byte) error {
	return os.WriteFile(f.Path(name), data, 0o644)
}

// Glob lists the names matching pattern, relative to the root like the pattern.
func (f FS) Glob(pattern string) ([]string, error) {
	full, err := filepath.Glob(f.Path(pattern))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(full))
	for _, p := range full {
		rel, err := filepath.Rel(f.Path("/"), p)
		if err != nil {
			return nil, err
		}
		out = append(out, "/"+rel)
	}
	return out, nil
}

// ReadTrim reads a small file's text without surrounding space; "" when unreadable.
func (f FS) ReadTrim(name string) string {
	b, err := f.ReadFile(name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ReadParse reads name and parses it; a parse error names the file.
func ReadParse[T any](f FS, name string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	b, err := f.ReadFile(name)
	if err != nil {
		return zero, err
	}
	v, err := parse(bytes.NewReader(b))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", f.Path(name), err)
	}
	return v, nil
}
