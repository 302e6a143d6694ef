// SPDX-License-Identifier: Apache-2.0

package view

import "strings"

// painter colors text only when asked; callers pad before painting so that escape codes never
// shift columns.
type painter struct{ on bool }

const (
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

type heat int

const (
	cold heat = iota
	yellow
	red
)

func (p painter) paint(h heat, s string) string {
	if !p.on || h == cold || strings.TrimSpace(s) == "" {
		return s
	}
	code := ansiRed
	if h == yellow {
		code = ansiYellow
	}
	// Only the text is painted, not its padding, so a highlighted cell reads as a word.
	lead := len(s) - len(strings.TrimLeft(s, " "))
	trail := len(s) - len(strings.TrimRight(s, " "))
	return s[:lead] + code + s[lead:len(s)-trail] + ansiReset + s[len(s)-trail:]
}
