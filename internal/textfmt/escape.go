// SPDX-License-Identifier: Apache-2.0

package textfmt

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Terminal returns s as it may be shown to a person: every byte that is not part of a
// printable character is written as an escape (`\x1b`, `\u0085`), so that a string from the
// host or a recording (a process name, an interface name, a cgroup path) can neither drive
// the terminal nor break an SVG or HTML page. Escaped are C0 controls (newline and tab too: a
// name holds none), DEL, C1 controls, bytes that are not UTF-8, and characters with no glyph
// (format characters such as bidirectional overrides, separators, private use, unassigned
// and non-characters). A backslash is kept as it is: systemd writes `\x2d` in cgroup paths,
// and doubling it would misquote every one of them. What is left is valid UTF-8 holding only
// characters XML 1.0 allows, and no width is hidden: each rune takes its column.
func Terminal(s string) string {
	i := 0
	for i < len(s) {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !shown(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case shown(r, size):
			b.WriteString(s[i : i+size])
		case r < utf8.RuneSelf || r == utf8.RuneError && size == 1:
			writeHex(&b, `\x`, uint32(s[i]), 2)
		case r <= 0xffff:
			writeHex(&b, `\u`, uint32(r), 4)
		default:
			writeHex(&b, `\U`, uint32(r), 8)
		}
		i += size
	}
	return b.String()
}

// writeHex writes prefix and v in n lower-case hex digits.
func writeHex(b *strings.Builder, prefix string, v uint32, n int) {
	const digits = "0123456789abcdef"
	b.WriteString(prefix)
	for i := n - 1; i >= 0; i-- {
		b.WriteByte(digits[v>>(4*i)&0xf])
	}
}

// shown says whether the rune r, size bytes of a string, is written as it is.
func shown(r rune, size int) bool {
	if r == utf8.RuneError && size == 1 {
		return false // not UTF-8
	}
	// Graphic is letters, marks, numbers, punctuation, symbols and spaces; it has no control,
	// format, separator (U+2028), private-use, surrogate or unassigned character.
	return r >= 0x20 && r != 0x7f && unicode.IsGraphic(r)
}

// Safe returns a deep copy of v in which every string, map keys included, has gone through
// Terminal. Renderers call it once on what they are given, so that no string from the host
// or a recording reaches their output unescaped, whichever field it is in, fields added
// later included. v itself is not changed: the same records are written as JSON, byte for
// byte. Two map keys that escape alike (a name holding ESC and one holding the text `\x1b`)
// are both kept, the one that was escaped marked "#2", so no count is hidden.
func Safe[T any](v T) T {
	src := reflect.ValueOf(&v).Elem()
	dst := reflect.New(src.Type()).Elem()
	safeCopy(dst, src)
	return dst.Interface().(T)
}

func safeCopy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.String:
		dst.SetString(Terminal(src.String()))
	case reflect.Pointer:
		if !src.IsNil() {
			p := reflect.New(src.Type().Elem())
			safeCopy(p.Elem(), src.Elem())
			dst.Set(p)
		}
	case reflect.Interface:
		if !src.IsNil() {
			e := reflect.New(src.Elem().Type()).Elem()
			safeCopy(e, src.Elem())
			dst.Set(e)
		}
	case reflect.Slice:
		if !src.IsNil() {
			s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
			for i := range src.Len() {
				safeCopy(s.Index(i), src.Index(i))
			}
			dst.Set(s)
		}
	case reflect.Array:
		for i := range src.Len() {
			safeCopy(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if !src.IsNil() {
			dst.Set(safeMap(src))
		}
	case reflect.Struct:
		// Unexported fields (a time.Time's) are copied as they are: they hold no text.
		dst.Set(src)
		for i := range src.NumField() {
			if src.Type().Field(i).IsExported() {
				safeCopy(dst.Field(i), src.Field(i))
			}
		}
	default:
		dst.Set(src)
	}
}

func safeMap(src reflect.Value) reflect.Value {
	t := src.Type()
	m := reflect.MakeMapWithSize(t, src.Len())
	put := func(k, nk reflect.Value) {
		nv := reflect.New(t.Elem()).Elem()
		safeCopy(nv, src.MapIndex(k))
		m.SetMapIndex(nk, nv)
	}
	// Keys that need no escape keep their name and cannot collide; the others are added
	// after them in sorted order, so which of two colliding keys is marked does not depend
	// on the map's order.
	var escaped []reflect.Value
	for _, k := range src.MapKeys() {
		nk := reflect.New(t.Key()).Elem()
		safeCopy(nk, k)
		if t.Key().Kind() == reflect.String && nk.String() != k.String() {
			escaped = append(escaped, k)
			continue
		}
		put(k, nk)
	}
	sort.Slice(escaped, func(i, j int) bool { return escaped[i].String() < escaped[j].String() })
	for _, k := range escaped {
		nk := reflect.New(t.Key()).Elem()
		base := Terminal(k.String())
		nk.SetString(base)
		for n := 2; m.MapIndex(nk).IsValid(); n++ {
			nk.SetString(base + "#" + strconv.Itoa(n))
		}
		put(k, nk)
	}
	return m
}
