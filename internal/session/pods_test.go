// SPDX-License-Identifier: Apache-2.0

package session

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/droptrace/droptrace/internal/hostfs"
	"github.com/droptrace/droptrace/internal/netns"
	"github.com/droptrace/droptrace/internal/pods"
)

// A network namespace held by a pod's sandbox is named by the pod (internal/pods' fixture
// node: pod default/web-0's sandbox holds /var/run/netns/cni-1b2c…).
func TestNetnsNamedByPod(t *testing.T) {
	const root = "../pods/testdata/root"
	var st unix.Stat_t
	if err := unix.Stat(root+"/var/run/netns/cni-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901", &st); err != nil {
		t.Fatal(err)
	}
	list := func() ([]netns.NS, error) {
		return []netns.NS{{Inode: 1, Name: "host"}, {Inode: st.Ino, Name: "cni-1b2c3d4e"}, {Inode: 1 << 40, Name: "pid:77 (sleep)"}}, nil
	}
	got, err := podNamed(list, pods.New(hostfs.New(root), nil, nil))()
	if err != nil || len(got) != 3 || got[0].Name != "host" || got[1].Name != "pod default/web-0" || got[2].Name != "pid:77 (sleep)" {
		t.Errorf("named %+v, %v", got, err)
	}
}
