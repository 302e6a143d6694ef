// SPDX-License-Identifier: Apache-2.0

// Package deploy_test checks the example deployment files: they parse, they ask for the
// capabilities droptrace needs and no more, they pass flags droptrace has, and their queries
// use metrics droptrace serves.
package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v2"

	"github.com/droptrace/droptrace/internal/metrics"
	"github.com/droptrace/droptrace/internal/pods"
)

// capabilities is the set both the systemd unit and the DaemonSet grant; deploy/systemd
// justifies each one.
var capabilities = []string{"BPF", "PERFMON", "SYSLOG", "SYS_PTRACE", "SYS_RESOURCE"} // sorted

func deployFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.SetStrict(true)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML document", path)
	}
	return docs
}

func TestEveryFileParsesAndHasALicense(t *testing.T) {
	files := deployFiles(t)
	for _, want := range []string{"systemd/droptrace.service", "kubernetes/daemonset.yaml",
		"grafana/droptrace-dashboard.json", "prometheus/droptrace-alerts.yaml"} {
		if !slices.Contains(files, filepath.FromSlash(want)) {
			t.Errorf("deploy/%s is missing", want)
		}
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch filepath.Ext(p) {
		case ".yaml", ".yml":
			yamlDocs(t, p)
		case ".json":
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		// JSON cannot hold a comment: its license is in a REUSE-style sidecar FILE.license.
		if strings.HasSuffix(p, ".license") {
			continue
		}
		head := b[:min(len(b), 200)]
		if !bytes.Contains(head, []byte("SPDX-License-Identifier: Apache-2.0")) {
			side, err := os.ReadFile(p + ".license")
			if err != nil || !bytes.Contains(side, []byte("SPDX-License-Identifier: Apache-2.0")) {
				t.Errorf("%s has no SPDX line (nor a %s.license)", p, p)
			}
		}
	}
}

// droptraceFlags are the long flags the droptrace command defines, read from its source.
func droptraceFlags(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`fs\.\w*Var\(&[\w.]+, "([a-z][a-z-]*)"`)
	out := map[string]bool{}
	srcs, _ := filepath.Glob("../cmd/droptrace/*.go")
	for _, p := range srcs {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out[string(m[1])] = true
		}
	}
	for _, f := range []string{"daemon", "metrics-addr", "output", "output-max-size", "output-keep", "interval"} {
		if !out[f] {
			t.Fatalf("flag --%s not found in cmd/droptrace: the flag pattern is out of date (%v)", f, out)
		}
	}
	return out
}

func checkFlags(t *testing.T, where string, args []string, known map[string]bool) {
	t.Helper()
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !known[name] {
			t.Errorf("%s passes --%s, which droptrace does not have", where, name)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	f, err := os.Open("systemd/droptrace.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]string{}
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			keys[cont] += " " + strings.TrimSuffix(line, "\\")
			if !strings.HasSuffix(line, "\\") {
				cont = ""
			}
			continue
		}
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("not a key=value line: %q", line)
			continue
		}
		keys[k] = strings.TrimSuffix(v, "\\")
		if strings.HasSuffix(v, "\\") {
			cont = k
		}
	}
	var caps []string
	for _, c := range strings.Fields(keys["CapabilityBoundingSet"]) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	slices.Sort(caps)
	if !slices.Equal(caps, capabilities) {
		t.Errorf("CapabilityBoundingSet %v, want %v", caps, capabilities)
	}
	exec := strings.Fields(keys["ExecStart"])
	if len(exec) == 0 || !slices.Contains(exec, "--daemon") || !slices.Contains(exec, "--metrics-addr") {
		t.Errorf("ExecStart %q: want --daemon and --metrics-addr", keys["ExecStart"])
	}
	checkFlags(t, "the systemd unit", exec, droptraceFlags(t))
	// Usage errors (2) are not retried; records lost (3) end a session that ran and was
	// stopped, which is no failure (docs/security.md#exit-codes).
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "KillSignal": "SIGTERM", "LimitMEMLOCK": "infinity",
		"RestartPreventExitStatus": "2", "SuccessExitStatus": "3"} {
		if keys[k] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	// Settings that would blind droptrace.
	for _, k := range []string{"ProtectProc", "PrivateNetwork", "PrivateUsers", "PrivatePIDs"} {
		if _, ok := keys[k]; ok {
			t.Errorf("%s hides the processes or namespaces droptrace reads", k)
		}
	}
}

// The DaemonSet's pod spec, as far as these checks go.
type podSpec struct {
	HostNetwork bool `yaml:"hostNetwork"`
	HostPID     bool `yaml:"hostPID"`
	Containers  []struct {
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		SecurityContext struct {
			Privileged   bool `yaml:"privileged"`
			Capabilities struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath struct {
			Path string `yaml:"path"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

func TestDaemonSet(t *testing.T) {
	var ds map[string]any
	for _, d := range yamlDocs(t, "kubernetes/daemonset.yaml") {
		if d["kind"] == "DaemonSet" {
			ds = d
		}
	}
	if ds == nil {
		t.Fatal("no DaemonSet")
	}
	// Round-trip the pod spec through the typed view.
	tmpl := ds["spec"].(map[any]any)["template"].(map[any]any)
	b, err := yaml.Marshal(tmpl["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var spec podSpec
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if !spec.HostNetwork || !spec.HostPID {
		t.Errorf("hostNetwork %v hostPID %v: droptrace needs the node's network and PID namespaces", spec.HostNetwork, spec.HostPID)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	add := slices.Clone(sc.Capabilities.Add)
	slices.Sort(add)
	if sc.Privileged || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !slices.Equal(add, capabilities) {
		t.Errorf("securityContext privileged %v, drop %v, add %v: want drop ALL, add %v", sc.Privileged, sc.Capabilities.Drop, add, capabilities)
	}
	checkFlags(t, "the DaemonSet", c.Args, droptraceFlags(t))
	if !slices.Contains(c.Args, "--daemon") {
		t.Errorf("args %v lack --daemon", c.Args)
	}
	// The endpoint's port is the one declared and annotated for scraping.
	var port string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--metrics-addr="); ok {
			port = v[strings.LastIndex(v, ":")+1:]
		}
	}
	ann := tmpl["metadata"].(map[any]any)["annotations"].(map[any]any)
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || port == "" || ann["prometheus.io/port"] != port ||
		port != strconv.Itoa(c.Ports[0].ContainerPort) {
		t.Errorf("--metrics-addr port %q, containerPort %v, annotation %v: want one port", port, c.Ports, ann["prometheus.io/port"])
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	host := map[string]string{}
	for _, v := range spec.Volumes {
		host[v.Name] = v.HostPath.Path
	}
	// The runtimes' state directories name pods and containers (internal/pods).
	nodePaths := []string{"/sys/kernel/btf", "/sys/kernel/tracing", "/run/netns"}
	for _, d := range pods.DefaultStateDirs {
		nodePaths = append(nodePaths, d.Dir)
	}
	for _, p := range nodePaths {
		found := false
		for name, mp := range mounts {
			if mp == p && host[name] == p {
				found = true
			}
		}
		if !found {
			t.Errorf("the node's %s is not mounted at %s", p, p)
		}
	}
}

var metricRe = regexp.MustCompile(`\bdroptrace_[a-z_]+\b`)

// checkExpr says what is wrong with a PromQL expression as far as can be told without
// Prometheus' parser: the metrics must exist and brackets must balance.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	names := metrics.Names()
	found := metricRe.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: no droptrace metric in %q", where, expr)
	}
	for _, m := range found {
		if !slices.Contains(names, m) {
			t.Errorf("%s: %s is not a droptrace metric", where, m)
		}
	}
	depth := map[rune]int{}
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for _, r := range expr {
		switch r {
		case '(', '[', '{':
			depth[r]++
		case ')', ']', '}':
			depth[pairs[r]]--
			if depth[pairs[r]] < 0 {
				t.Errorf("%s: unbalanced %q in %q", where, r, expr)
			}
		}
	}
	for r, d := range depth {
		if d != 0 {
			t.Errorf("%s: unbalanced %q in %q", where, r, expr)
		}
	}
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/droptrace-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v: want an alert name and a summary", r)
			}
			if s := r.Labels["severity"]; s != "info" && s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			checkExpr(t, r.Alert, r.Expr)
		}
	}
	// The alerts docs/deployment.md promises.
	for _, want := range []string{"DroptraceBacklogDrops", "DroptraceSqueezesRising", "DroptraceUnexplainedMismatch", "DroptraceLostEvents"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s alert", want)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/droptrace-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			GridPos struct {
				W int `json:"w"`
				H int `json:"h"`
			} `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q uid %q", d.Title, d.UID)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "instance") {
		t.Errorf("template variables %v: want datasource and instance", vars)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: title, size and targets needed", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr)
			for _, m := range metricRe.FindAllString(tg.Expr, -1) {
				used[m] = true
			}
		}
	}
	for _, m := range []string{"droptrace_drops_total", "droptrace_softnet_dropped_total", "droptrace_net_rx_squeezes_total",
		"droptrace_net_rx_busy_seconds_total", "droptrace_check_status", "droptrace_lost_events_total"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
