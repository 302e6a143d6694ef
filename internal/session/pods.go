// SPDX-License-Identifier: Apache-2.0

package session

import (
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pods"
)

// podNamed lists network namespaces with list, naming each that a pod's sandbox holds by its
// pod ("pod default/web-0") instead of a process or an `ip netns` name.
func podNamed(list func() ([]netns.NS, error), r *pods.Resolver) func() ([]netns.NS, error) {
	return func() ([]netns.NS, error) {
		nss, err := list()
		for i := range nss {
			if nss[i].Name == "host" {
				continue
			}
			if c, ok := r.Netns(nss[i].Inode); ok && c.Pod() != "" {
				nss[i].Name = "pod " + c.Pod()
			}
		}
		return nss, err
	}
}
