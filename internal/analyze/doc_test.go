// SPDX-License-Identifier: Apache-2.0

package analyze

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// docs/analyze.md documents the JSON document table by table; the tables must name exactly
// the fields the Go types write, in order, so that the documentation cannot drift.
func TestDocMatchesTypes(t *testing.T) {
	types := map[string]reflect.Type{
		"Document": reflect.TypeFor[Document](), "Warning": reflect.TypeFor[Warning](),
		"Report": reflect.TypeFor[Report](), "Totals": reflect.TypeFor[Totals](),
		"ReasonSum": reflect.TypeFor[ReasonSum](), "CPUSum": reflect.TypeFor[CPUSum](),
		"Point": reflect.TypeFor[Point](), "PointCPU": reflect.TypeFor[PointCPU](),
		"Comparison": reflect.TypeFor[Comparison](), "Setting": reflect.TypeFor[Setting](),
		"Row": reflect.TypeFor[Row](), "CPURow": reflect.TypeFor[CPURow](), "VerdictRow": reflect.TypeFor[VerdictRow](),
	}
	f, err := os.Open("../../docs/analyze.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string][]string{}
	heading := ""
	field := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "### "); ok {
			heading = name
			continue
		}
		if m := field.FindStringSubmatch(line); m != nil && types[heading] != nil {
			documented[heading] = append(documented[heading], m[1])
		}
	}
	for name, typ := range types {
		var want []string
		for i := range typ.NumField() {
			sf := typ.Field(i)
			if sf.Anonymous {
				continue // CPUSum's record.CPU is documented in docs/jsonl.md
			}
			tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			want = append(want, tag)
		}
		if !reflect.DeepEqual(documented[name], want) {
			t.Errorf("docs/analyze.md %s documents %v; the type writes %v", name, documented[name], want)
		}
	}
}
