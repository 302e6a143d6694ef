// SPDX-License-Identifier: Apache-2.0

package doctor

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// Feature is a kernel feature droptrace uses where the kernel has it, and what it does
// without it.
type Feature struct {
	Name  string
	Since string // the first Linux release with it
	// Instead is what droptrace does on a kernel without it.
	Instead string
	// Have probes the running kernel: true when present, false with why when not.
	Have func() (bool, error)
}

// Features are the kernel features whose absence changes what droptrace can do. Each is
// probed, not inferred from the release: distributions backport features into older releases.
var Features = []Feature{
	{Name: "BPF ring buffer", Since: "5.8", Instead: "no BPF program loads: counters-only mode",
		Have: func() (bool, error) { return haveOrNot(features.HaveMapType(ebpf.RingBuf)) }},
	{Name: "tp_btf programs", Since: "5.5", Instead: "the classic tracepoints (skb:kfree_skb, napi:napi_poll, irq:softirq_entry/exit) are attached",
		// The typedef every BTF-enabled raw tracepoint has, which tp_btf programs attach by.
		Have: func() (bool, error) { return haveKernelType("btf_trace_kfree_skb", isTypedef) }},
	{Name: "bpf_rdonly_cast", Since: "6.2", Instead: "the L4 protocol of a drop is read with bpf_probe_read_kernel (one helper call more per drop)",
		Have: func() (bool, error) { return haveKernelType("bpf_rdonly_cast", isFunc) }},
	{Name: "drop reasons", Since: "5.17", Instead: "drops are named from their location (the kfree_skb caller in kallsyms, call sites calibrated at start; see docs/checks.md)",
		Have: func() (bool, error) { return haveKernelType("skb_drop_reason", isEnum) }},
	{Name: "SO_NETNS_COOKIE", Since: "5.14", Instead: "a network namespace whose every process changed between two listings is taken as replaced (its counters start over)",
		Have: haveNetnsCookie},
	{Name: "pidfd_getfd", Since: "5.6", Instead: "the receive buffer and queue figures of the sockets that drop are not read",
		Have: havePidfdGetfd},
}

// haveOrNot turns a cilium/ebpf feature probe's answer into present or absent (with why).
func haveOrNot(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return false, nil
	}
	return false, err
}

// haveKernelType says whether the kernel's BTF has a type of that name and of the kind is
// accepts (a forward declaration is not the type).
func haveKernelType(name string, is func(btf.Type) bool) (bool, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return false, fmt.Errorf("read kernel BTF: %w", err)
	}
	types, err := spec.AnyTypesByName(name)
	if errors.Is(err, btf.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(types, is), nil
}

func isFunc(t btf.Type) bool    { _, ok := t.(*btf.Func); return ok }
func isEnum(t btf.Type) bool    { _, ok := t.(*btf.Enum); return ok }
func isTypedef(t btf.Type) bool { _, ok := t.(*btf.Typedef); return ok }

func haveNetnsCookie() (bool, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	_, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if errors.Is(err, unix.ENOPROTOOPT) {
		return false, nil
	}
	return err == nil, err
}

// havePidfdGetfd calls pidfd_getfd on no descriptor: EBADF means the call exists.
func havePidfdGetfd() (bool, error) {
	_, err := unix.PidfdGetfd(-1, 0, 0)
	switch {
	case errors.Is(err, unix.ENOSYS):
		return false, nil
	case errors.Is(err, unix.EBADF):
		return true, nil
	}
	return false, fmt.Errorf("pidfd_getfd(-1): %v", err)
}

// featureResult is doctor's line for the features: those the kernel lacks, each with its
// release and what droptrace does instead.
func featureResult(fs []Feature) Result {
	var missing, unknown []string
	for _, f := range fs {
		ok, err := f.Have()
		switch {
		case err != nil:
			unknown = append(unknown, fmt.Sprintf("%s (%v)", f.Name, err))
		case !ok:
			missing = append(missing, fmt.Sprintf("%s (Linux %s): %s", f.Name, f.Since, f.Instead))
		}
	}
	r := Result{Name: "kernel features", Level: OK}
	switch {
	case len(missing) == 0 && len(unknown) == 0:
		names := make([]string, len(fs))
		for i, f := range fs {
			names[i] = f.Name
		}
		r.Detail = "all present: " + strings.Join(names, ", ")
	default:
		r.Level = Warn
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, "this kernel lacks "+strings.Join(missing, "; "))
		}
		if len(unknown) > 0 {
			parts = append(parts, "not probed: "+strings.Join(unknown, "; "))
		}
		r.Detail = strings.Join(parts, "; ")
		r.Fix = "a newer kernel has them; what is done instead is said for each"
	}
	return r
}
