// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"errors"
	"strings"
	"testing"
)

func TestFeatureResultSaysWhatIsMissingAndWhatIsUsedInstead(t *testing.T) {
	have := func() (bool, error) { return true, nil }
	lack := func() (bool, error) { return false, nil }
	broken := func() (bool, error) { return false, errors.New("no BTF") }
	fs := []Feature{
		{Name: "drop reasons", Since: "5.17", Instead: "named from their location", Have: lack},
		{Name: "tp_btf programs", Since: "5.5", Instead: "classic tracepoints", Have: have},
		{Name: "bpf_rdonly_cast", Since: "6.2", Instead: "bpf_probe_read_kernel", Have: broken},
	}
	r := featureResult(fs)
	if r.Level != Warn {
		t.Errorf("level %s, want %s", r.Level, Warn)
	}
	for _, want := range []string{"drop reasons (Linux 5.17): named from their location", "not probed: bpf_rdonly_cast (no BTF)"} {
		if !strings.Contains(r.Detail, want) {
			t.Errorf("detail %q lacks %q", r.Detail, want)
		}
	}
	if strings.Contains(r.Detail, "classic tracepoints") {
		t.Errorf("detail %q names a feature the kernel has", r.Detail)
	}
	if r := featureResult(fs[1:2]); r.Level != OK || !strings.Contains(r.Detail, "all present: tp_btf programs") {
		t.Errorf("all present: %+v", r)
	}
}

// Every feature says when it came and what is done without it.
func TestFeaturesAreDocumented(t *testing.T) {
	for _, f := range Features {
		if f.Since == "" || f.Instead == "" || f.Have == nil {
			t.Errorf("feature %q: since %q, instead %q, probe set %v", f.Name, f.Since, f.Instead, f.Have != nil)
		}
	}
}
