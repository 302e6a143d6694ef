// SPDX-License-Identifier: Apache-2.0

package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"
)

// checkReadFiles reads names in one entry into ns and compares each result with ReadFile's:
// the same file contents' shape (counters may move between the reads) and the same errors.
func checkReadFiles(t *testing.T, ns NS, names ...string) [][]byte {
	t.Helper()
	bufs, errs := ns.ReadFiles(names...)
	if len(bufs) != len(names) || len(errs) != len(names) {
		t.Fatalf("ReadFiles(%q): %d buffers, %d errors", names, len(bufs), len(errs))
	}
	for i, name := range names {
		b, err := ns.ReadFile(name)
		if (err == nil) != (errs[i] == nil) || err != nil && err.Error() != errs[i].Error() {
			t.Errorf("%s: ReadFiles error %v, ReadFile error %v", name, errs[i], err)
		}
		first := func(b []byte) []byte { l, _, _ := bytes.Cut(b, []byte("\n")); return l }
		if !bytes.Equal(first(b), first(bufs[i])) || (b == nil) != (bufs[i] == nil) {
			t.Errorf("%s: ReadFiles read %q..., ReadFile %q...", name, first(bufs[i]), first(b))
		}
	}
	return bufs
}

func TestReadFilesOwnNamespace(t *testing.T) {
	self, _ := Self()
	ns, _ := find(t, self)
	bufs := checkReadFiles(t, ns, "snmp", "no_such_file", "../x", "netstat")
	if !bytes.HasPrefix(bufs[0], []byte("Ip:")) || !bytes.HasPrefix(bufs[3], []byte("TcpExt:")) {
		t.Errorf("read %q and %q", bufs[0][:10], bufs[3][:10])
	}
}

// A bind-mounted namespace is entered once for all the files; a file it lacks is an error
// of that file alone.
func TestPrivReadFilesBindMount(t *testing.T) {
	requireRoot(t)
	ns := addNetns(t, fmt.Sprintf("dtnstest-%d-files", os.Getpid()))
	bufs := checkReadFiles(t, ns, "snmp", "no_such_file", "netstat", "snmp6")
	if !bytes.HasPrefix(bufs[0], []byte("Ip:")) || !bytes.HasPrefix(bufs[2], []byte("TcpExt:")) {
		t.Errorf("read %q and %q", bufs[0], bufs[2])
	}
	if _, errs := ns.ReadFiles("snmp", "no_such_file"); errs[0] != nil || !errors.Is(errs[1], os.ErrNotExist) {
		t.Errorf("errors %v", errs)
	}
	self, _ := Self()
	if now, _ := Self(); now != self {
		t.Error("this thread was left in the test namespace")
	}
}

// A namespace only a process holds is read through it; once it exits every file is ErrGone.
func TestPrivReadFilesThroughProcess(t *testing.T) {
	requireRoot(t)
	c, ino := startUnshared(t)
	ns, _ := find(t, ino)
	if ns.pid != c.Process.Pid {
		t.Fatalf("namespace %d not listed through pid %d: %+v", ino, c.Process.Pid, ns)
	}
	checkReadFiles(t, ns, "dev", "no_such_file", "snmp")
	c.Process.Kill()
	c.Wait()
	for i, err := range checkErrs(ns.ReadFiles("dev", "snmp")) {
		if !errors.Is(err, ErrGone) {
			t.Errorf("file %d after its only process exited: %v, want ErrGone", i, err)
		}
	}
}

func checkErrs(_ [][]byte, errs []error) []error { return errs }

// ReadFilesInto reads into the caller's buffers: once they are large enough, reading the same
// files again reuses their storage, through every route (own namespace, a process's).
func TestReadFilesIntoReusesBuffers(t *testing.T) {
	self, _ := Self()
	ns, _ := find(t, self)
	viaPid := ns
	viaPid.self, viaPid.pid = false, os.Getpid()
	for _, n := range []NS{ns, viaPid} {
		scratch := [][]byte{make([]byte, 0, 1<<16), make([]byte, 0, 1<<16)}
		bufs, errs := n.ReadFilesInto(scratch, "snmp", "netstat")
		for i, b := range bufs {
			if errs[i] != nil || !bytes.Contains(b, []byte(":")) {
				t.Fatalf("self %v: file %d: %q, %v", n.self, i, b, errs[i])
			}
			if &b[:1][0] != &scratch[i][:1][0] {
				t.Errorf("self %v: file %d was read into new storage", n.self, i)
			}
		}
	}
}
