// SPDX-License-Identifier: Apache-2.0

package tracer

import "testing"

// On a kernel without drop reasons BPF keys a drop in one of Options.SockFuncs by the
// function's index and the call site's offset: the key comes back with its location.
func TestSockKeyOfASocketFunctionHasItsCallSite(t *testing.T) {
	tr := &Tracer{opts: Options{SockFuncs: []FuncRange{
		{Start: 0xffffffff81000000, End: 0xffffffff81000800},
		{Start: 0xffffffff81002000, End: 0xffffffff81002a00},
	}}}
	cfg := tr.opts.dropConfig()
	if cfg.SockFns[1].Start != 0xffffffff81002000 || cfg.SockFns[1].End != 0xffffffff81002a00 || cfg.SockFns[2].Start != 0 {
		t.Errorf("drop_config.sock_fns %+v", cfg.SockFns)
	}
	k := tr.sockKey(dropsSockKey{Netns: 7, Reason: sockLoc | 1<<16 | 0x9a3, L4: 17})
	if k.Reason != 0 || k.Location != 0xffffffff810029a3 || k.Netns != 7 {
		t.Errorf("key %+v", k)
	}
	// A kernel's own reason code passes unchanged, without a location.
	if k := tr.sockKey(dropsSockKey{Reason: 2}); k.Reason != 2 || k.Location != 0 {
		t.Errorf("reason key %+v", k)
	}
}
