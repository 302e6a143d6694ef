// SPDX-License-Identifier: Apache-2.0

// Package docs holds no code: its test keeps the README's and docs/'s relative links pointing
// at files and headings that exist.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// link matches inline links and images: [text](target) and ![alt](target).
var link = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)

// inlineCode matches code spans, whose brackets are not links.
var inlineCode = regexp.MustCompile("`[^`]*`")

// unfenced returns the lines of a Markdown file with fenced code blocks blanked, so that line
// i of the result is line i+1 of the file.
func unfenced(text string) []string {
	lines := strings.Split(text, "\n")
	fenced := false
	for i, l := range lines {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			lines[i] = ""
		} else if fenced {
			lines[i] = ""
		}
	}
	return lines
}

// anchors are the fragments GitHub gives a file's headings: lower case, punctuation (and the
// backticks of code) dropped, spaces as hyphens, "-1", "-2" ... for repeats.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, l := range unfenced(text) {
		t, ok := strings.CutPrefix(l, "#")
		if !ok {
			continue
		}
		t = strings.TrimLeft(t, "#")
		if !strings.HasPrefix(t, " ") {
			continue
		}
		a := slug(strings.TrimSpace(t))
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every relative link in README.md and docs/*.md names a file or directory of the tree, and
// a heading that exists when it has a #fragment into a Markdown file.
func TestRelativeLinksResolve(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "README.md"))
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range unfenced(string(b)) {
			l = inlineCode.ReplaceAllString(l, "")
			for _, m := range link.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				checked++
				path, frag, _ := strings.Cut(target, "#")
				dest := f
				if path != "" {
					dest = filepath.Join(filepath.Dir(f), path)
					if _, err := os.Stat(dest); err != nil {
						t.Errorf("%s: line %d: %s: no such file or directory", f, i+1, target)
						continue
					}
				}
				if frag == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				db, err := os.ReadFile(dest)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(db))[frag] {
					t.Errorf("%s: line %d: %s: %s has no heading #%s", f, i+1, target, dest, frag)
				}
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the link pattern is broken")
	}
}
