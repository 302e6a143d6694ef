// SPDX-License-Identifier: Apache-2.0

// Package pods names the Kubernetes pod and container of a process or a network namespace
// from the node alone, without the API server: the kubelet's cgroup paths give the pod UID,
// QoS class and container ID; the container runtime's OCI config.json (its annotations) gives
// the pod's namespace and name and the container's name, and the sandbox's network namespace.
// Everything is read under a hostfs root, and everything read is written by others: see
// ErrUnsafe, MaxConfigBytes and printable.
package pods

import (
	"errors"
	"log/slog"
	"os"
	"path"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostfs"
)

// Container is what is known of one container.
type Container struct {
	ID        string
	Runtime   string
	Name      string // in the pod spec; "" for a sandbox or when no config.json was read
	PodName   string
	Namespace string
	PodUID    string
	QoS       string
	Sandbox   bool
}

// Pod is "namespace/name", "" when the runtime's state did not say.
func (c Container) Pod() string {
	if c.Namespace == "" || c.PodName == "" {
		return ""
	}
	return c.Namespace + "/" + c.PodName
}

// MaxContainers bounds the containers whose config.json is cached, and the entries of a state
// directory looked at when naming network namespaces. Past it the cache starts again and the
// entries dropped are counted (Stats.Evicted).
const MaxContainers = 4096

// retryMissing is how long a container whose config.json could not be read is not read again:
// a runtime may not have written it yet, but a 3 a.m. storm must not re-read every interval.
// rescanNetns is the same for listing state directories to name an unknown network namespace.
const (
	retryMissing = 30 * time.Second
	rescanNetns  = 10 * time.Second
)

// Resolver names containers and pods, caching what it read by container ID. It is safe for
// concurrent use.
type Resolver struct {
	fs   hostfs.FS
	dirs []StateDir
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	cache   map[string]entry // by container ID
	netns   map[uint64]string
	scanned time.Time // when netns was built
	// truncated: a scan met more than MaxContainers entries (said once)
	truncated bool
	stats     Stats
}

type entry struct {
	dir  StateDir
	meta Meta
	ok   bool      // a config.json was read
	at   time.Time // when a failed read was tried
}

// Stats says what the cache did.
type Stats struct {
	Reads   uint64 // config.json files looked for
	Errors  uint64 // of which unreadable, unsafe, too large or malformed
	Evicted uint64 // entries dropped because MaxContainers were cached
}

// New returns a resolver reading fsys's /proc and the state directories dirs (nil:
// DefaultStateDirs). log (nil: slog.Default) hears of each unreadable config.json once.
func New(fsys hostfs.FS, dirs []StateDir, log *slog.Logger) *Resolver {
	if dirs == nil {
		dirs = DefaultStateDirs
	}
	if log == nil {
		log = slog.Default()
	}
	return &Resolver{fs: fsys, dirs: dirs, log: log, now: time.Now, cache: map[string]entry{}}
}

// Stats is what the cache did so far.
func (r *Resolver) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Process names the container of process pid from its /proc/<pid>/cgroup, or from cgroup (a
// path already read) when that file is gone. ok is false when no kubelet-made cgroup holds
// the process. A nil Resolver names nothing.
func (r *Resolver) Process(pid int, cgroup string) (Container, bool) {
	if r == nil {
		return Container{}, false
	}
	ref, ok := Ref{}, false
	if f, err := r.fs.Open(path.Join("/proc", strconv.Itoa(pid), "cgroup")); err == nil {
		ref, ok = ParseProcCgroup(f)
		f.Close()
	}
	if !ok {
		ref, ok = ParseCgroupPath(cgroup)
	}
	if !ok {
		return Container{}, false
	}
	c := Container{ID: ref.ID, Runtime: ref.Runtime, PodUID: ref.PodUID, QoS: ref.QoS}
	if ref.ID == "" {
		return c, true
	}
	e := r.lookup(ref.ID, ref.Runtime)
	// The kernel's cgroup path is the ground truth: a config.json for another pod under
	// this ID is not believed.
	if e.ok && (e.meta.PodUID == "" || e.meta.PodUID == ref.PodUID) {
		c.Runtime, c.Name, c.PodName, c.Namespace, c.Sandbox = e.dir.Runtime, e.meta.Name, e.meta.PodName, e.meta.PodNamespace, e.meta.Sandbox
	}
	return c, true
}

// lookup is the cached config.json of container id, from the state directories of runtime
// first (all of them when runtime is "").
func (r *Resolver) lookup(id, runtime string) entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.cache[id]; ok && (e.ok || r.now().Sub(e.at) < retryMissing) {
		return e
	}
	e := r.read(id, runtime)
	r.store(id, e)
	return e
}

// read tries each state directory for id's config.json. Called with mu held.
func (r *Resolver) read(id, runtime string) entry {
	// The runtime the cgroup named first, then the others: the cgroupfs driver does not say.
	order := make([]StateDir, 0, len(r.dirs))
	for _, d := range r.dirs {
		if d.Runtime == runtime {
			order = append(order, d)
		}
	}
	for _, d := range r.dirs {
		if d.Runtime != runtime {
			order = append(order, d)
		}
	}
	var firstErr error
	for _, d := range order {
		r.stats.Reads++
		m, err := readConfig(r.fs, d, id)
		if err == nil {
			return entry{dir: d, meta: m, ok: true}
		}
		if !errors.Is(err, os.ErrNotExist) {
			r.stats.Errors++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if firstErr != nil {
		r.log.Warn("container not named: its runtime state is not believed", "container", id, "err", firstErr)
	}
	return entry{at: r.now()}
}

// store caches e under id, starting the cache again when it is full. Called with mu held.
func (r *Resolver) store(id string, e entry) {
	if _, ok := r.cache[id]; !ok && len(r.cache) >= MaxContainers {
		r.stats.Evicted += uint64(len(r.cache))
		r.log.Warn("container cache full: starting it again", "containers", len(r.cache), "evicted_total", r.stats.Evicted)
		clear(r.cache)
	}
	r.cache[id] = e
}

// Netns names the pod whose sandbox holds the network namespace with inode ino: the
// sandbox's config.json gives the namespace's path (/var/run/netns/cni-…), whose inode is
// compared. The state directories are listed again at most every rescanNetns, and only when
// ino is not known; a known one is checked again (one stat), since the kernel reuses the
// inode numbers of namespaces that are gone.
func (r *Resolver) Netns(ino uint64) (Container, bool) {
	if r == nil || ino == 0 {
		return Container{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.netns[ino]
	if ok && !r.holds(id, ino) {
		delete(r.netns, ino)
		ok = false
	}
	if !ok && (r.netns == nil || r.now().Sub(r.scanned) >= rescanNetns) {
		r.scanNetns()
		id, ok = r.netns[ino]
	}
	e := r.cache[id]
	if !ok || !e.ok {
		return Container{}, false
	}
	return Container{ID: id, Runtime: e.dir.Runtime, PodName: e.meta.PodName, Namespace: e.meta.PodNamespace,
		PodUID: e.meta.PodUID, Sandbox: true}, true
}

// PodNetns is the inode of the network namespace of the pod "namespace/name": its sandbox's,
// from a fresh scan of the state directories. A pod on the host's network has none.
func (r *Resolver) PodNetns(name string) (uint64, bool) {
	if r == nil {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scanNetns()
	for ino, id := range r.netns {
		if e := r.cache[id]; e.ok && e.meta.PodNamespace+"/"+e.meta.PodName == name {
			return ino, true
		}
	}
	return 0, false
}

// holds says whether sandbox id's network namespace is still namespace ino. Called with mu
// held.
func (r *Resolver) holds(id string, ino uint64) bool {
	got, ok := r.sandboxNetns(id)
	return ok && got == ino
}

// sandboxNetns is the inode of sandbox id's network namespace: the path its config.json
// gives, else its first process's (a runtime that lets the OCI runtime make the namespace
// names no path). The pid file is read each time, never kept: once the sandbox is gone, its
// pid may be another process's. Called with mu held.
func (r *Resolver) sandboxNetns(id string) (uint64, bool) {
	e, ok := r.cache[id]
	if !ok || !e.ok || !e.meta.Sandbox || !e.meta.OwnNetns {
		return 0, false
	}
	var st unix.Stat_t
	if e.meta.NetnsPath != "" && unix.Stat(r.fs.Path(e.meta.NetnsPath), &st) == nil {
		return st.Ino, true
	}
	pid, err := readPid(r.fs, e.dir, id)
	if err != nil || unix.Stat(r.fs.Path(path.Join("/proc", strconv.Itoa(pid), "ns", "net")), &st) != nil {
		return 0, false
	}
	return st.Ino, true
}

// scanNetns maps the network namespaces of every sandbox in the state directories. Config
// files come from the cache; only new sandboxes are read. Called with mu held.
func (r *Resolver) scanNetns() {
	r.scanned = r.now()
	r.netns = map[uint64]string{}
	seen := 0
	for _, d := range r.dirs {
		ents, err := r.fs.ReadDir(d.Dir)
		if err != nil {
			continue
		}
		for _, de := range ents {
			id := de.Name()
			if !validID(id) || !de.IsDir() {
				continue
			}
			if seen++; seen > MaxContainers {
				if !r.truncated {
					r.truncated = true
					r.log.Warn("more containers in the runtimes' state directories than are looked at to name network namespaces", "looked_at", MaxContainers)
				}
				return
			}
			e, ok := r.cache[id]
			if !ok || !e.ok && r.now().Sub(e.at) >= retryMissing {
				e = r.read(id, d.Runtime)
				r.store(id, e)
			}
			if ino, ok := r.sandboxNetns(id); ok {
				r.netns[ino] = id
			}
		}
	}
}
