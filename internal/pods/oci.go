// SPDX-License-Identifier: Apache-2.0

package pods

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/textfmt"
)

// StateDir is a directory where a container runtime keeps one directory per container, with
// the container's OCI config.json (its bundle) in it.
type StateDir struct {
	Runtime string // RuntimeContainerd or RuntimeCRIO
	Dir     string // from the hostfs root
}

// DefaultStateDirs are the runtimes' usual state directories: containerd's bundles of the
// CRI plugin's "k8s.io" namespace, and CRI-O's containers in containers/storage (run root,
// then graph root).
var DefaultStateDirs = []StateDir{
	{RuntimeContainerd, "/run/containerd/io.containerd.runtime.v2.task/k8s.io"},
	{RuntimeCRIO, "/run/containers/storage/overlay-containers"},
	{RuntimeCRIO, "/var/lib/containers/storage/overlay-containers"},
}

// Runtimes names the runtimes a StateDir may be for, as --runtime-state-dir takes them.
var Runtimes = []string{RuntimeContainerd, RuntimeCRIO}

// configPath is where a container's config.json is, below the state directory.
func (d StateDir) configPath(id string) []string {
	if d.Runtime == RuntimeCRIO {
		return []string{id, "userdata", "config.json"}
	}
	return []string{id, "config.json"}
}

// pidPath is where the runtime writes the pid of the container's first process (runc's shim:
// the bundle's init.pid; conmon: userdata/pidfile).
func (d StateDir) pidPath(id string) []string {
	if d.Runtime == RuntimeCRIO {
		return []string{id, "userdata", "pidfile"}
	}
	return []string{id, "init.pid"}
}

// MaxConfigBytes bounds what is read of a config.json; the runtimes write a few tens of KiB.
const MaxConfigBytes = 1 << 20

// Errors of reading a config.json. Each is wrapped with the file's path.
var (
	// ErrUnsafe: the file or a directory on its way is a symbolic link, not a regular file,
	// has several names or is owned by someone else than root (or the user droptrace runs
	// as). Anyone who can write there could have planted it to make root read a file of
	// their choosing, or to name a pod of their choosing.
	ErrUnsafe = errors.New("unsafe runtime state file")
	// ErrTooLarge: the file is larger than MaxConfigBytes.
	ErrTooLarge = errors.New("runtime state file too large")
	// ErrMalformed: the file is not an OCI config (JSON with annotations).
	ErrMalformed = errors.New("malformed OCI config")
)

// Meta is what a container's config.json says about it.
type Meta struct {
	PodName, PodNamespace, PodUID string
	Name                          string // the container's name in the pod spec; "" for a sandbox
	Sandbox                       bool   // the pod's sandbox (pause) container
	SandboxID                     string
	NetnsPath                     string // the network namespace the OCI runtime joins, if a path is given
	OwnNetns                      bool   // a network namespace is asked for (not a hostNetwork pod)
}

// The annotations containerd's CRI plugin and CRI-O set on every container of a pod
// (containerd: internal/cri/annotations; CRI-O: pkg/annotations).
var annotationKeys = []struct {
	pod, namespace, uid, name, typ, sandboxID string
}{
	{"io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-uid",
		"io.kubernetes.cri.container-name", "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"},
	{"io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid",
		"io.kubernetes.container.name", "io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"},
}

// ParseConfig reads the annotations and the network namespace path of an OCI config.json.
// Names are made printable (see printable): they end up on terminals and in verdict text.
func ParseConfig(r io.Reader) (Meta, error) {
	var cfg struct {
		Annotations map[string]string `json:"annotations"`
		Linux       *struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	}
	if err := json.NewDecoder(io.LimitReader(r, MaxConfigBytes+1)).Decode(&cfg); err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var m Meta
	a := cfg.Annotations
	for _, k := range annotationKeys {
		if a[k.pod] == "" && a[k.namespace] == "" {
			continue
		}
		m = Meta{PodName: printable(a[k.pod]), PodNamespace: printable(a[k.namespace]), PodUID: printable(a[k.uid]),
			Name: printable(a[k.name]), SandboxID: printable(a[k.sandboxID])}
		if m.Sandbox = a[k.typ] == "sandbox"; m.Sandbox {
			m.Name = "" // CRI-O calls it "POD": no container of the pod spec
		}
		break
	}
	if cfg.Linux != nil {
		for _, ns := range cfg.Linux.Namespaces {
			if ns.Type != "network" {
				continue
			}
			m.OwnNetns = true
			if strings.HasPrefix(ns.Path, "/") {
				m.NetnsPath = filepath.Clean(ns.Path)
			}
		}
	}
	return m, nil
}

// maxName bounds a name kept from an annotation; Kubernetes allows 253 bytes for a pod's.
const maxName = 253

// printable escapes what a name from a file others wrote must not carry into a terminal or a
// "namespace/name" pair: what textfmt.Terminal escapes, and '/' (as \x2f); and cuts it at
// maxName bytes. Valid Kubernetes names pass unchanged.
func printable(s string) string {
	if len(s) > maxName {
		s = s[:maxName]
	}
	return strings.ReplaceAll(textfmt.Terminal(s), "/", `\x2f`)
}

// readConfig reads the config.json of container id in state directory d. The state directory
// is the configuration's and may be reached through links (/var/run is one to /run); below
// it, no link is followed and the file must be trusted (see ErrUnsafe).
func readConfig(fsys hostfs.FS, d StateDir, id string) (Meta, error) {
	dir := fsys.Path(d.Dir)
	name := filepath.Join(append([]string{dir}, d.configPath(id)...)...)
	f, err := openBelow(dir, d.configPath(id))
	if err != nil {
		return Meta{}, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	m, err := ParseConfig(f)
	if err != nil {
		return Meta{}, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// readPid reads the pid file of container id, as safely as its config.json.
func readPid(fsys hostfs.FS, d StateDir, id string) (int, error) {
	dir := fsys.Path(d.Dir)
	f, err := openBelow(dir, d.pidPath(id))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(append([]string{dir}, d.pidPath(id)...)...), err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 32))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: %q is not a pid: %w", f.Name(), b, ErrMalformed)
	}
	return pid, nil
}

// openBelow opens dir/rel... for reading without following a link at any component of rel,
// and checks the file: regular, one name, owned by a trusted user, at most MaxConfigBytes.
func openBelow(dir string, rel []string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	for i, c := range rel {
		flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW
		if i < len(rel)-1 {
			flags |= unix.O_DIRECTORY
		} else {
			flags |= unix.O_NONBLOCK // a FIFO planted there must not hang the session
		}
		next, err := unix.Openat(fd, c, flags, 0)
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.ELOOP), i < len(rel)-1 && errors.Is(err, unix.ENOTDIR):
			// O_NOFOLLOW|O_DIRECTORY meets a link with ENOTDIR.
			return nil, fmt.Errorf("%s is a symbolic link or not a directory: %w", c, ErrUnsafe)
		case err != nil:
			return nil, &os.PathError{Op: "open", Path: c, Err: err}
		}
		fd = next
	}
	f := os.NewFile(uintptr(fd), rel[len(rel)-1])
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: f.Name(), Err: err}
	}
	what := ""
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		what = "is not a regular file"
	case !trusted(st.Uid):
		what = "is owned by uid " + strconv.FormatUint(uint64(st.Uid), 10)
	case st.Nlink > 1:
		what = fmt.Sprintf("has %d hard links", st.Nlink)
	}
	if what != "" {
		f.Close()
		return nil, fmt.Errorf("%s %s (want a regular file of root's): %w", f.Name(), what, ErrUnsafe)
	}
	if st.Size > MaxConfigBytes {
		f.Close()
		return nil, fmt.Errorf("%d bytes, more than %d: %w", st.Size, MaxConfigBytes, ErrTooLarge)
	}
	return f, nil
}

// trusted says whether a state file of uid may be believed: root's, as the runtimes write
// them, or droptrace's own user's when it does not run as root (nothing gained from its own).
func trusted(uid uint32) bool {
	return uid == 0 || uid == uint32(os.Geteuid())
}
