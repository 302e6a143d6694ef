// SPDX-License-Identifier: Apache-2.0

// Package texttest helps the tests of renderers prove that no string from the host or a
// recording reaches their output unescaped: Taint makes every string of a record hostile,
// Printable checks what was rendered.
package texttest

import (
	"fmt"
	"reflect"
	"sort"
	"unicode/utf8"
)

// Hostile is a process name that, printed raw, sets the terminal's title and clears its
// screen.
const Hostile = "\x1b]0;PWN\x07\x1b[2J"

// enums are the fields whose values a renderer compares with constants: tainting them would
// only take the renderer down another branch, not show the string.
var enums = map[string]bool{"Type": true, "Mode": true, "Status": true, "Severity": true, "Confidence": true}

// Taint appends s to every string reachable from v, a pointer, map keys included, except the
// fields that name a record's type, mode, status, severity or confidence.
func Taint(v any, s string) {
	taint(reflect.ValueOf(v), s)
}

func taint(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return
		}
		if v.Kind() == reflect.Interface {
			e := reflect.New(v.Elem().Type()).Elem()
			e.Set(v.Elem())
			taint(e.Addr(), s)
			if v.CanSet() {
				v.Set(e)
			}
			return
		}
		taint(v.Elem(), s)
	case reflect.String:
		if v.CanSet() {
			v.SetString(v.String() + s)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			taint(v.Index(i), s)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && !enums[f.Name] {
				taint(v.Field(i), s)
			}
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			val := reflect.New(v.Type().Elem()).Elem()
			val.Set(v.MapIndex(k))
			taint(val, s)
			nk := k
			if k.Kind() == reflect.String {
				nk = reflect.ValueOf(k.String() + s).Convert(k.Type())
				v.SetMapIndex(k, reflect.Value{})
			}
			v.SetMapIndex(nk, val)
		}
	}
}

// Printable returns an error when out holds a byte that is not UTF-8, a control character
// other than the newline, DEL or a C1 control: what a terminal would act on, or an XML parser
// refuse.
func Printable(out string) error {
	for i, r := range out {
		switch {
		case r == utf8.RuneError && runeLen(out[i:]) == 1:
			return fmt.Errorf("byte %d: %#x is not UTF-8 in %q", i, out[i], context(out, i))
		case r < 0x20 && r != '\n', r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("byte %d: control character %U in %q", i, r, context(out, i))
		}
	}
	return nil
}

func runeLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

func context(s string, i int) string {
	return s[max(i-40, 0):min(i+40, len(s))]
}
