// SPDX-License-Identifier: Apache-2.0

package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"
)

// makeVar is the value the Makefile gives name ("NAME ?= value" or "NAME := value").
func makeVar(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + name + `\s*[?:]?=\s*(.+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("the Makefile sets no %s", name)
	}
	return strings.TrimSpace(string(m[1]))
}

// packageContents maps each source of packaging/nfpm.yaml to where the package installs it.
func packageContents(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../packaging/nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Contents []struct {
			Src string `yaml:"src"`
			Dst string `yaml:"dst"`
		} `yaml:"contents"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range cfg.Contents {
		out[c.Src] = c.Dst
	}
	return out
}

// The DaemonSet runs the image `make image` builds, whose entry point is the binary the
// Containerfile copies from `make dist`; the unit runs the binary where the .deb installs it,
// and the package installs this unit.
func TestArtefactNames(t *testing.T) {
	image := makeVar(t, "IMAGE")
	b, err := os.ReadFile("kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s+image:\s*(\S+)$`).FindAllSubmatch(b, -1)
	if len(images) != 1 || string(images[0][1]) != image+":latest" {
		t.Errorf("the DaemonSet runs %q, want %s:latest (make image's IMAGE)", images, image)
	}
	if !strings.Contains(string(b), "`make image`") {
		t.Error("the DaemonSet does not say which target builds its image")
	}

	cf, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM scratch", "COPY dist/droptrace-linux-${TARGETARCH} /droptrace", `ENTRYPOINT ["/droptrace"]`,
		`org.opencontainers.image.licenses="Apache-2.0"`, "org.opencontainers.image.source=", "org.opencontainers.image.version="} {
		if !strings.Contains(string(cf), want) {
			t.Errorf("the Containerfile lacks %q", want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "-o dist/droptrace-linux-$$a ./cmd/droptrace") || makeVar(t, "ARCHES") != "amd64 arm64" {
		t.Error("make dist no longer builds dist/droptrace-linux-{amd64,arm64}, which the Containerfile and nfpm.yaml copy")
	}

	contents := packageContents(t)
	bin := contents["dist/droptrace-linux-${DEB_ARCH}"]
	unit := contents["deploy/systemd/droptrace.service"]
	if bin != "/usr/bin/droptrace" || unit != "/lib/systemd/system/droptrace.service" {
		t.Errorf("the package installs the binary at %q and the unit at %q", bin, unit)
	}
	u, err := os.ReadFile("systemd/droptrace.service")
	if err != nil {
		t.Fatal(err)
	}
	exec := regexp.MustCompile(`(?m)^ExecStart=(\S+)`).FindSubmatch(u)
	if exec == nil || string(exec[1]) != bin {
		t.Errorf("the unit runs %q, the package installs %q", exec, bin)
	}
	// The unit's state directory is where it records, and what purging the package removes.
	post, err := os.ReadFile("../packaging/postrm")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(u), "StateDirectory=droptrace\n") || !strings.Contains(string(u), "--output /var/lib/droptrace/") ||
		!strings.Contains(string(post), "rm -rf /var/lib/droptrace\n") {
		t.Error("StateDirectory, --output and the purge of /var/lib/droptrace disagree")
	}
	if !slices.Contains(strings.Fields(string(u)), "--daemon") {
		t.Error("the unit does not run --daemon")
	}
}
