#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /init of the guest that scripts/vmtest.sh boots: busybox sh, run by the kernel from the
# initramfs. It mounts what the Go binaries need before any of them starts (cilium/ebpf raises
# RLIMIT_MEMLOCK in a package init and droptrace reads /proc, /sys and tracefs), loads the
# modules listed in /modules/order, runs the privileged tests, sends the results to the host on
# the second serial port and prints the verdict marker that the host decides pass/fail from.
# It always powers off: qemu runs with -no-reboot, and a panic reboots (panic=-1), so qemu exits.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root TMPDIR=/tmp

mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

say() { echo "vmtest-init: $*"; }
finish() {
	# The marker is the last thing printed; the host trusts nothing else.
	echo "VMTEST-RESULT: $1"
	sync
	sleep 1
	poweroff -f
	sleep 5
	exit 1
}

mount -t proc proc /proc || finish "FAIL mount /proc"
mount -t sysfs sysfs /sys || finish "FAIL mount /sys"
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=0755 run /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tracefs nodev /sys/kernel/tracing || finish "FAIL mount tracefs"
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
hostname vmtest
ip link set lo up

# shellcheck source=/dev/null
. /vmtest.env

while read -r mod; do
	[ -n "$mod" ] || continue
	insmod "/modules/$mod" || finish "FAIL insmod $mod"
	say "loaded $mod"
done </modules/order

R=/report
mkdir -p $R/sessions
uname -r >$R/uname
nproc >$R/nproc
cp /proc/net/softnet_stat $R/softnet_stat
cp /sys/kernel/tracing/events/skb/kfree_skb/format $R/kfree_skb_format 2>/dev/null
# The text symbols: the drop locations in the kept sessions resolve against them (fixtures for
# the table that names drops by location on kernels without drop reasons).
grep -i ' t ' /proc/kallsyms | gzip >$R/kallsyms.gz
say "kernel $(cat $R/uname), $(cat $R/nproc) CPUs, flood $VMTEST_FLOOD datagrams"

export DROPTRACE_E2E_BINARY=/bin/droptrace DROPTRACE_E2E_REPORT=$R/sessions DROPTRACE_E2E_FLOOD="$VMTEST_FLOOD"
# tshark and its libraries are too big for the initramfs: the --pcap tests read their captures
# with the pcapng library here, so each kernel's BPF packet copy is still checked.
export DROPTRACE_E2E_PCAP_READER=go
# The real-NIC scenario: the host floods this port once the test writes its marker to ttyS1.
export DROPTRACE_E2E_NIC_PORT="$VMTEST_NIC_PORT" DROPTRACE_E2E_NIC_READY=/dev/ttyS1
result=PASS
for t in netlab e2e; do
	say "run $t.test"
	start=$(date +%s)
	# The test binary runs from a directory of its own, as go test runs it from its package.
	mkdir -p /work/$t
	{
		cd /work/$t && /bin/$t.test -test.v -test.count=1 -test.timeout="$VMTEST_TEST_TIMEOUT" -test.skip "$VMTEST_SKIP"
		echo $? >$R/$t.rc
	} 2>&1 | tee $R/$t.log
	rc=$(cat $R/$t.rc)
	say "$t.test exited $rc after $(($(date +%s) - start))s"
	[ "$rc" = 0 ] || result=FAIL
done
# A second pass of the hidden-loss scenario through the classic tracepoints, in the same boot
# (option also-tracepoint in scripts/vmtest-kernels), kept apart.
if [ "$VMTEST_ALSO" = tracepoint ]; then
	say "run e2e.test's scenario again with --tracepoint"
	mkdir -p $R/sessions-tracepoint
	{
		cd /work/e2e && DROPTRACE_E2E_BINARY=/bin/droptrace-tracepoint DROPTRACE_E2E_REPORT=$R/sessions-tracepoint \
			/bin/e2e.test -test.v -test.count=1 -test.timeout="$VMTEST_TEST_TIMEOUT" -test.run '^TestPrivHiddenLossReconciles$'
		echo $? >$R/e2e-tracepoint.rc
	} 2>&1 | tee $R/e2e-tracepoint.log
	[ "$(cat $R/e2e-tracepoint.rc)" = 0 ] || result=FAIL
fi
cp /proc/net/softnet_stat $R/softnet_stat.after

# The bundle goes out raw (no \n -> \r\n) between markers; close() drains the UART.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
{
	echo VMTEST-BUNDLE-BEGIN
	tar -C $R -czf - . | base64
	echo VMTEST-BUNDLE-END
} >/dev/ttyS1 || result="FAIL writing the report to ttyS1"
finish "$result"
