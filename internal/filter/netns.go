// SPDX-License-Identifier: Apache-2.0

package filter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/record"
	"github.com/droptrace/droptrace/internal/tracer"
)

// Place is a network namespace: its inode, as BPF keys drops, and a way in, to look its
// devices up.
type Place struct {
	Inode uint32
	// Enter runs fn on a thread inside the namespace.
	Enter func(fn func() error) error
}

// Namespaces finds network namespaces.
type Namespaces interface {
	Self() (Place, error)
	ByInode(ino uint32) (Place, error)
	// ByPath opens a namespace file: an `ip netns` bind mount, /proc/PID/ns/net.
	ByPath(path string) (Place, error)
	// Pod finds the namespace of a pod, "namespace/name".
	Pod(name string) (Place, error)
}

// ErrNoPods means pod names cannot be resolved: Host.Pods is not set.
var ErrNoPods = errors.New("pod names are not resolved in this build")

// Host finds the namespaces of the running system.
type Host struct {
	// Pods resolves a pod name (namespace/name) to its sandbox's namespace: the hook for the
	// container runtime lookup. Nil: pod names are refused with ErrNoPods.
	Pods func(name string) (Place, error)
}

// Self is droptrace's own namespace.
func (Host) Self() (Place, error) {
	ino, err := netns.Self()
	if err != nil {
		return Place{}, err
	}
	return Place{Inode: uint32(ino), Enter: func(fn func() error) error { return fn() }}, nil
}

// ByInode finds a namespace among those with a process or an `ip netns` bind mount.
func (Host) ByInode(ino uint32) (Place, error) {
	all, err := netns.List()
	if err != nil {
		return Place{}, err
	}
	for _, ns := range all {
		if ns.Inode == uint64(ino) {
			return Place{Inode: ino, Enter: checked(ns.Inode, ns.Enter)}, nil
		}
	}
	return Place{}, fmt.Errorf("no process or `ip netns` is in network namespace %d: %w", ino, os.ErrNotExist)
}

// ByPath opens path and checks that it is a network namespace.
func (Host) ByPath(path string) (Place, error) {
	f, err := os.Open(path)
	if err != nil {
		return Place{}, err
	}
	defer f.Close()
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil || typ != unix.CLONE_NEWNET {
		return Place{}, fmt.Errorf("%s is not a network namespace", path)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Place{}, err
	}
	return Place{Inode: uint32(st.Ino), Enter: checked(st.Ino, func(fn func() error) error { return netns.Do(path, fn) })}, nil
}

// Pod asks the Pods hook.
func (h Host) Pod(name string) (Place, error) {
	if h.Pods == nil {
		return Place{}, ErrNoPods
	}
	return h.Pods(name)
}

// checked makes enter fail when the thread it entered is not in namespace ino: a process may
// have moved since it was listed.
func checked(ino uint64, enter func(func() error) error) func(func() error) error {
	return func(fn func() error) error {
		return enter(func() error {
			if self, err := netns.Self(); err != nil || self != ino {
				return fmt.Errorf("could not enter network namespace %d: %w", ino, os.ErrNotExist)
			}
			return fn()
		})
	}
}

const wantNetns = "want a netns inode (as records print it), a path such as /run/netns/NAME or /proc/PID/ns/net, an `ip netns` name, or a pod as namespace/name"

// findNetns resolves one --netns value.
func findNetns(v string, nss Namespaces) (Place, error) {
	var p Place
	var err error
	switch {
	case v == "":
		return p, bad("--netns", v, "%s", wantNetns)
	case strings.Trim(v, "0123456789") == "":
		ino, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return p, bad("--netns", v, "%s", wantNetns)
		}
		p, err = nss.ByInode(uint32(ino))
	case strings.HasPrefix(v, "/") || strings.HasPrefix(v, "."):
		p, err = nss.ByPath(v)
	case strings.Contains(v, "/"):
		p, err = nss.Pod(v)
	default:
		p, err = nss.ByPath(filepath.Join(netns.RunDir, v))
	}
	if err != nil {
		return p, bad("--netns", v, "%v (%s; lsns -t net lists them)", err, wantNetns)
	}
	return p, nil
}

// resolvePlaces resolves --netns, then --iface in the one namespace --netns names (droptrace's
// own without --netns), as pwru does.
func resolvePlaces(netnsValues, ifaces []string, nss Namespaces, f *tracer.Filter, rec *record.Filters) error {
	netnsValues, ifaces = dedupe(netnsValues), dedupe(ifaces)
	if err := errors.Join(tooMany("--netns", netnsValues, tracer.MaxFilterNetns), tooMany("--iface", ifaces, tracer.MaxFilterIfaces)); err != nil {
		return err
	}
	var errs []error
	var places []Place
	for _, v := range netnsValues {
		p, err := findNetns(v, nss)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(f.Netns, p.Inode) {
			places = append(places, p)
			f.Netns = append(f.Netns, p.Inode)
			rec.Netns = append(rec.Netns, p.Inode)
		}
	}
	if len(ifaces) == 0 || len(errs) > 0 {
		return errors.Join(errs...)
	}
	var where Place
	switch len(places) {
	case 0:
		p, err := nss.Self()
		if err != nil {
			return bad("--iface", ifaces[0], "cannot find droptrace's own network namespace: %v", err)
		}
		where = p
	case 1:
		where = places[0]
	default:
		return bad("--iface", strings.Join(ifaces, ","), "devices are looked up in the one namespace --netns names; give one --netns with --iface")
	}
	for _, v := range ifaces {
		ifc, err := findIface(v, where)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		key := tracer.Iface{Netns: where.Inode, Ifindex: uint32(ifc.Index)}
		if slices.Contains(f.Ifaces, key) {
			continue // a name and its ifindex
		}
		f.Ifaces = append(f.Ifaces, key)
		rec.Ifaces = append(rec.Ifaces, record.FilterIface{Name: ifc.Name, Netns: where.Inode, Ifindex: uint32(ifc.Index)})
	}
	return errors.Join(errs...)
}

// findIface looks one --iface value, a name or an ifindex, up inside where.
func findIface(v string, where Place) (*net.Interface, error) {
	var ifc *net.Interface
	var names []string
	err := where.Enter(func() error {
		var err error
		if idx, perr := strconv.Atoi(v); perr == nil && idx > 0 {
			ifc, err = net.InterfaceByIndex(idx)
		} else {
			ifc, err = net.InterfaceByName(v)
		}
		if err != nil {
			if all, lerr := net.Interfaces(); lerr == nil {
				for _, i := range all {
					names = append(names, i.Name)
				}
			}
		}
		return err
	})
	if err != nil {
		want := fmt.Sprintf("want a device name or ifindex in network namespace %d: %v", where.Inode, err)
		if len(names) > 0 {
			want += "; devices there: " + strings.Join(names, ", ")
		}
		return nil, bad("--iface", v, "%s", want)
	}
	return ifc, nil
}
