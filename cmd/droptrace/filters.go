// SPDX-License-Identifier: Apache-2.0

package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/droptrace/droptrace/internal/filter"
	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/pods"
)

// filterFlags are the event filters, pwru's and Retis's: each repeatable, values of one flag
// ORed, flags ANDed. Matched in BPF before the ring buffer; the counts keep every drop.
type filterFlags struct {
	spec     filter.Spec
	resolved filter.Filter
}

func (f *filterFlags) set(fs *pflag.FlagSet) {
	const implies = "; repeatable; implies --events"
	fs.StringSliceVar(&f.spec.Reasons, "reason", nil, "stream only drops of this `REASON`, named as drop records name it (NO_SOCKET, SOCKET_RCVBUFF, OPENVSWITCH:LAST_ACTION), up to 8"+implies)
	fs.StringArrayVar(&f.spec.Netns, "netns", nil, "stream only drops in this network namespace (`NETNS`): an inode, a path (/run/netns/NAME, /proc/PID/ns/net), an ip netns name or a pod (NAMESPACE/NAME), up to 4"+implies)
	fs.StringArrayVar(&f.spec.Ifaces, "iface", nil, "stream only drops on this device (`IFACE`): a name or an ifindex in the --netns namespace (droptrace's own without --netns), up to 4"+implies)
	fs.StringSliceVar(&f.spec.Ports, "port", nil, "stream only drops whose source or destination `PORT` is this one (TCP, UDP, UDP-Lite), up to 8"+implies)
	fs.StringSliceVar(&f.spec.Protos, "proto", nil, "stream only drops of this L4 protocol (`PROTO`): tcp, udp, icmp, icmpv6, sctp, udplite or a number"+implies)
}

// resolve checks and resolves every filter value, before anything is opened or written: a
// name that cannot be resolved is a usage error naming its flag. Filters select events, so
// they turn events on, as pwru users expect of `droptrace --reason NO_SOCKET`.
func (f *flags) resolveFilters(env filter.Env) error {
	r, err := filter.Resolve(f.filters.spec, env)
	if err != nil {
		var errs []error
		for _, e := range unjoin(err) {
			errs = append(errs, usageError{e})
		}
		return errors.Join(errs...)
	}
	f.filters.resolved = r
	if r.Record != nil {
		f.events = true
	}
	return nil
}

// filterEnv finds namespaces on this host, pods by the container runtimes' state (the
// directories of --runtime-state-dir, checked with the bounds).
func (f *flags) filterEnv() filter.Env {
	dirs, err := f.pods.parse()
	if err != nil {
		return filter.Env{}
	}
	resolver := pods.New(hostfs.Host(), dirs, nil)
	return filter.Env{Namespaces: filter.Host{Pods: func(name string) (filter.Place, error) {
		ino, ok := resolver.PodNetns(name)
		if !ok {
			return filter.Place{}, fmt.Errorf("no pod %s with a network namespace of its own in the container runtimes' state directories: %w", name, os.ErrNotExist)
		}
		return filter.Host{}.ByInode(uint32(ino))
	}}}
}

// unjoin lists the errors errors.Join put together.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
