#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel tests in VMs (`make vmtest`): for each kernel in scripts/vmtest-kernels, boot Debian's
# kernel under qemu with an initramfs holding the static test binaries, droptrace, busybox, the
# host's iproute2 and the kernel's veth module, run the privileged tests inside (the real
# hidden-loss scenario: veth, RPS, drops; and a real NIC: virtio-net on qemu's user network,
# which this script floods from 127.0.0.1), and report per kernel; the running kernel is tested
# directly. Exits non-zero if any kernel fails. Run as root.
#
# Environment:
#   VMTEST_KERNELS   names from scripts/vmtest-kernels to run (default: all but the opt-in ones),
#                    e.g. "6.1 host"
#   VMTEST_CACHE     kernel package cache (default /var/cache/droptrace-vmtest)
#   VMTEST_OUT       results (default out/vmtest)
#   VMTEST_FLOOD     datagrams in the guest's hidden-loss flood (default 20000; 200000 on the host)
#   VMTEST_TIMEOUT   seconds one VM may run before it is killed (default 900)
#   VMTEST_MEM       guest memory (default 2G)
#   VMTEST_NIC_FLOOD datagrams the host sends the guest's NIC (default 60000, at 12000 a second
#                    for at most 6 seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

KERNELS_FILE=scripts/vmtest-kernels
CACHE=${VMTEST_CACHE:-/var/cache/droptrace-vmtest}
OUT=$(realpath -m "${VMTEST_OUT:-out/vmtest}")
FLOOD=${VMTEST_FLOOD:-20000}
TIMEOUT=${VMTEST_TIMEOUT:-900}
MEM=${VMTEST_MEM:-2G}
NIC_FLOOD=${VMTEST_NIC_FLOOD:-60000}
NIC_RATE=12000
NIC_SECONDS=6
GO=${GO:-go}
# Tests no run of make vmtest spends its time on: the e2e tests of droptrace's userspace alone
# (a full disk, a scrape flood, descriptor exhaustion, pcapng rotation, metrics against the
# recording), which no kernel changes and make test runs; and the capability-set test, which
# reads deploy/ (the guests have none) and make release-test runs.
SKIP='^(TestPrivCapabilitySet|TestPrivFullDiskKeepsTracing|TestPrivScrapeFloodStillServesPrometheus|TestPrivDescriptorExhaustionCostsIntervals|TestPrivPcapRotates|TestPrivMetricsMatchTheRecording)$'
# The modules the scenarios need, with their dependencies from modules.dep (one built into the
# kernel is skipped); tun: the --pcap test writes raw IP packets into a tun device.
MODULES="veth virtio_pci virtio_net tun"

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo make vmtest): the host run needs BPF, netns and sysctls, the initramfs a /dev/console node"

# --- what this needs from Debian ------------------------------------------------------------
apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	log "apt-get update"
	apt-get update -qq -o DPkg::Lock::Timeout=600 || return 1
	apt_updated=1
}
install_tools() {
	local missing=() p
	for p in qemu-system-x86 busybox-static cpio kmod iproute2 xz-utils zstd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_update
	log "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		-o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

# A kernel from another Debian release (a suite in scripts/vmtest-kernels) comes from a private
# apt configuration under the cache: its own sources, lists and package cache, so the host's
# apt sees nothing of it. APT_OPTS holds the options for the current kernel (none: the host's).
APT_OPTS=()
SUITE=
use_suite() { # SUITE or "-"
	SUITE=$1
	APT_OPTS=()
	[ "$SUITE" = - ] && return 0
	local a="$CACHE/apt/$SUITE" key=/usr/share/keyrings/debian-archive-keyring.gpg
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	printf 'deb [signed-by=%s] %s %s main\n' \
		"$key" http://deb.debian.org/debian "$SUITE" \
		"$key" http://deb.debian.org/debian-security "$SUITE-security" >"$a/sources.list"
	APT_OPTS=(-o "Dir::Etc::sourcelist=$a/sources.list" -o Dir::Etc::sourceparts=- \
		-o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o APT::Get::List-Cleanup=0)
}
apt_suite_updated=()
apt_update_suite() {
	[ "$SUITE" = - ] && { apt_update; return; }
	case " ${apt_suite_updated[*]} " in *" $SUITE "*) return 0 ;; esac
	log "apt-get update ($SUITE, private configuration in $CACHE/apt/$SUITE)"
	apt-get "${APT_OPTS[@]}" update -qq || return 1
	apt_suite_updated+=("$SUITE")
}

# resolve PACKAGE: prints "linux-image-... VERSION" of the kernel image PACKAGE is or points to.
resolve() {
	local pkg=$1 show dep
	show=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$pkg" 2>/dev/null) || return 1
	[ -n "$show" ] || return 1
	dep=$(sed -n 's/^Depends: //p' <<<"$show" | tr ',' '\n' |
		sed -n 's/^ *\(linux-image-[^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' | head -1)
	if [ -n "$dep" ]; then
		echo "$dep"
	else
		echo "$pkg $(sed -n 's/^Version: //p' <<<"$show" | head -1)"
	fi
}

# fetch_kernel NAME PACKAGE: sets KDIR (extracted package: boot/, lib/modules/), KPKG, KVER, KREL.
fetch_kernel() {
	local name=$1 pkg=$2 r tmp rkey=$2
	# The same meta-package name means another kernel in another suite.
	[ "$SUITE" = - ] || rkey="$SUITE:$pkg"
	mkdir -p "$CACHE/resolved"
	r=$(resolve "$pkg") || { apt_update_suite && r=$(resolve "$pkg"); } ||
		r=$(cat "$CACHE/resolved/$rkey" 2>/dev/null) || die "$name: apt knows no package $pkg"
	read -r KPKG KVER <<<"$r"
	KDIR="$CACHE/${KPKG}_${KVER}"
	if [ ! -e "$KDIR/.complete" ]; then
		tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
		log "$name: apt-get download $KPKG=$KVER"
		if ! (cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq -o APT::Sandbox::User=root "$KPKG=$KVER"); then
			# An old index names a build the archive no longer has: update and resolve again.
			rm -rf "$tmp"
			apt_update_suite || die "$name: apt-get update failed"
			r=$(resolve "$pkg") || die "$name: apt knows no package $pkg"
			read -r KPKG KVER <<<"$r"
			KDIR="$CACHE/${KPKG}_${KVER}"
			tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
			(cd "$tmp" && apt-get "${APT_OPTS[@]}" download -qq -o APT::Sandbox::User=root "$KPKG=$KVER") ||
				die "$name: apt-get download $KPKG=$KVER failed"
		fi
		if [ ! -e "$KDIR/.complete" ]; then
			rm -rf "$KDIR" && mkdir -p "$KDIR"
			dpkg-deb -x "$tmp"/*.deb "$KDIR"
			KREL=$(ls "$KDIR/lib/modules")
			# Debian's package leaves modules.dep to the postinst: make it here.
			depmod -b "$KDIR" "$KREL"
			touch "$KDIR/.complete"
		fi
		rm -rf "$tmp"
	fi
	echo "$KPKG $KVER" >"$CACHE/resolved/$rkey"
	KREL=$(ls "$KDIR/lib/modules")
	case "$KREL" in
	"$name".*|"$name"-*) ;;
	*) die "$name: $pkg is now kernel $KREL; fix $KERNELS_FILE" ;;
	esac
}

# --- the initramfs -------------------------------------------------------------------------------
# copy_with_libs FILE DESTROOT: FILE and the shared libraries ldd lists, at the same paths.
copy_with_libs() {
	local f=$1 root=$2 lib
	install -D -m 0755 "$f" "$root/bin/$(basename "$f")"
	for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
		install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
	done
}

# module_order MODDIR MODULE...: the modules' files, dependencies first, from modules.dep.
module_order() {
	local dir=$1 m
	shift
	declare -A seen=()
	visit() {
		local path=$1 dep line
		[ -n "${seen[$path]:-}" ] && return 0
		seen[$path]=1
		line=$(grep -m1 "^$path:" "$dir/modules.dep") || die "$path is not in modules.dep"
		for dep in ${line#*:}; do visit "$dep"; done
		echo "$path"
	}
	for m in "$@"; do
		local path
		path=$(grep -m1 -E "(^|/)$m\\.ko(\\.(xz|zst|gz))?:" "$dir/modules.dep" | cut -d: -f1)
		if [ -z "$path" ] && grep -qE "(^|/)$m\\.ko$" "$dir/modules.builtin" 2>/dev/null; then
			continue
		fi
		[ -n "$path" ] || die "module $m is not in $dir/modules.dep"
		visit "$path"
	done
}

build_initramfs() { # DEST.cpio
	local dest=$1 stage moddir path base applet
	stage=$(mktemp -d "$OUT/stage.XXXXXX")
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,modules,work}
	install -m 0755 /bin/busybox "$stage/bin/busybox"
	# iproute2's ip, not busybox's: the tests use `ip netns`.
	copy_with_libs "$(command -v ip)" "$stage"
	for applet in $(/bin/busybox --list); do
		[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
	done
	install -m 0755 "$OUT/bin/e2e.test" "$OUT/bin/netlab.test" "$stage/bin/"
	# droptrace-tracepoint makes every session attach the classic tracepoints (--tracepoint);
	# the subcommands take no such flag. It is droptrace itself on a run that forces them, and
	# the second pass's on a run that also tries them (ALSO).
	install -m 0755 "$OUT/bin/droptrace" "$stage/bin/droptrace.bin"
	cat >"$stage/bin/droptrace-tracepoint" <<-'EOF'
		#!/bin/sh
		case "$1" in version | doctor | analyze) exec /bin/droptrace.bin "$@" ;; esac
		exec /bin/droptrace.bin --tracepoint "$@"
	EOF
	chmod 0755 "$stage/bin/droptrace-tracepoint"
	if [ "$ATTACH" = tracepoint ]; then
		ln -s droptrace-tracepoint "$stage/bin/droptrace"
	else
		ln -s droptrace.bin "$stage/bin/droptrace"
	fi
	install -m 0755 scripts/vmtest-init.sh "$stage/init"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
	mknod -m 600 "$stage/dev/console" c 5 1
	cat >"$stage/vmtest.env" <<-EOF
		VMTEST_FLOOD=$FLOOD
		VMTEST_NIC_PORT=$NIC_PORT
		VMTEST_ALSO=$ALSO
		VMTEST_TEST_TIMEOUT=$((TIMEOUT / 3))s
		VMTEST_SKIP='$SKIP'
	EOF
	# busybox insmod takes plain .ko files: decompress here.
	moddir="$KDIR/lib/modules/$KREL"
	: >"$stage/modules/order"
	for path in $(module_order "$moddir" $MODULES); do
		base=$(basename "$path")
		case "$base" in
		*.ko.xz) xz -dc "$moddir/$path" >"$stage/modules/${base%.xz}" ;;
		*.ko.zst) zstd -qdc "$moddir/$path" >"$stage/modules/${base%.zst}" ;;
		*.ko.gz) gzip -dc "$moddir/$path" >"$stage/modules/${base%.gz}" ;;
		*) cp "$moddir/$path" "$stage/modules/$base" ;;
		esac
		basename "${base%.ko*}.ko" >>"$stage/modules/order"
	done
	# mktemp made the stage 0700: it becomes /, which the tests' unprivileged user must traverse.
	chmod 0755 "$stage"
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$dest"
	rm -rf "$stage"
}

# --- runs ----------------------------------------------------------------------------------------
# meta DIR KEY=VALUE...: appended to DIR/meta, which the report reads.
meta() {
	local d=$1
	shift
	printf '%s\n' "$@" >>"$d/meta"
}

run_host() { # NAME
	local name=$1 d="$OUT/$1" t start rc
	mkdir -p "$d/report/sessions"
	meta "$d" "name=$name" "where=host" "release=$(uname -r)"
	[ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
	uname -r >"$d/report/uname"
	nproc >"$d/report/nproc"
	cp /proc/net/softnet_stat "$d/report/softnet_stat"
	cp /sys/kernel/tracing/events/skb/kfree_skb/format "$d/report/kfree_skb_format" 2>/dev/null || true
	start=$(date +%s)
	for t in netlab e2e; do
		log "$name: $t.test on the running kernel $(uname -r)"
		set +e
		(cd "internal/$t" && DROPTRACE_E2E_BINARY="$OUT/bin/droptrace" DROPTRACE_E2E_REPORT="$d/report/sessions" \
			"$OUT/bin/$t.test" -test.v -test.count=1 -test.timeout=15m -test.skip "$SKIP") >"$d/report/$t.log" 2>&1
		rc=$?
		set -e
		echo "$rc" >"$d/report/$t.rc"
		grep -E '^(--- |ok|PASS|FAIL)' "$d/report/$t.log" | sed "s/^/[$name] /" >&2 || true
	done
	meta "$d" "seconds=$(($(date +%s) - start))" "rc=0" "timed_out=0"
}

# free_udp_port: a UDP port nothing on the host's loopback is bound to, for qemu's forward.
free_udp_port() {
	local p i
	for i in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Hulna "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	die "no free UDP port found for the real-NIC scenario"
}

# nic_flood DIR: once the guest's real-NIC test says it listens (on the second serial port),
# flood its forwarded port on 127.0.0.1, bounded in count and time.
nic_flood() {
	local d=$1
	until grep -qa VMTEST-NIC-READY "$d/ttyS1" 2>/dev/null; do sleep 0.5; done
	log "$(basename "$d"): the guest listens; $NIC_FLOOD datagrams to 127.0.0.1:$NIC_PORT"
	"$OUT/bin/nicflood" -port "$NIC_PORT" -count "$NIC_FLOOD" -rate "$NIC_RATE" -duration "${NIC_SECONDS}s" >"$d/nicflood.log" 2>&1
}

run_vm() { # NAME PACKAGE
	local name=$1 pkg=$2 d="$OUT/$1" start fetched accel rc timed_out=0 flooder
	mkdir -p "$d"
	start=$(date +%s)
	fetch_kernel "$name" "$pkg"
	fetched=$(date +%s)
	NIC_PORT=$(free_udp_port)
	build_initramfs "$d/initramfs.cpio"
	# One host thread for both vCPUs: multi-threaded TCG mishandles cross-modifying code, and a
	# 6.12 guest can die of a stray int3 in __napi_poll (the napi_poll tracepoint's text_poke
	# site) when the drop storm attaches programs while every vCPU floods.
	accel=tcg,thread=single
	if [ -w /dev/kvm ] && grep -qE '\b(vmx|svm)\b' /proc/cpuinfo; then accel=kvm; fi
	meta "$d" "name=$name" "where=qemu" "package=$KPKG" "version=$KVER" "release=$KREL" "accel=${accel%%,*}" \
		"fetch_seconds=$((fetched - start))"
	[ -z "$ATTACH" ] || meta "$d" "attach=$ATTACH"
	[ -z "$ALSO" ] || meta "$d" "also=$ALSO"
	log "$name: booting $KREL ($KPKG $KVER) under qemu (${accel%%,*}), 3 vCPUs, $MEM, NIC on 127.0.0.1:$NIC_PORT"
	: >"$d/ttyS1"
	nic_flood "$d" &
	flooder=$!
	set +e
	# The NIC: virtio-net on qemu's user network, with only the scenario's UDP port forwarded
	# from the host's loopback.
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
		-nodefaults -display none -no-reboot \
		-accel "$accel" -cpu max -smp 3 -m "$MEM" \
		-netdev "user,id=n1,restrict=on,hostfwd=udp:127.0.0.1:$NIC_PORT-:$NIC_PORT" -device virtio-net-pci,netdev=n1 \
		-kernel "$KDIR/boot/vmlinuz-$KREL" -initrd "$d/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 loglevel=4 mitigations=off" \
		-serial stdio -serial "file:$d/ttyS1" </dev/null |
		tr -d '\r' | tee "$d/console.log" | sed -u "s/^/[$name] /"
	rc=${PIPESTATUS[0]}
	kill "$flooder" 2>/dev/null
	wait "$flooder" 2>/dev/null
	set -e
	[ -s "$d/nicflood.log" ] && meta "$d" "nic_flood=$(cat "$d/nicflood.log")"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then timed_out=1; fi
	meta "$d" "seconds=$(($(date +%s) - start))" "rc=$rc" "timed_out=$timed_out"
	# The bundle: base64 of a tar.gz between two markers on the second serial port.
	mkdir -p "$d/report"
	if [ -s "$d/ttyS1" ] && grep -q VMTEST-BUNDLE-END "$d/ttyS1"; then
		sed -n '/^VMTEST-BUNDLE-BEGIN/,/^VMTEST-BUNDLE-END/p' "$d/ttyS1" | tr -d '\r' | sed '1d;$d' |
			base64 -d | tar -xzf - -C "$d/report" || log "$name: the guest's report bundle is damaged"
	fi
}

# --- main ----------------------------------------------------------------------------------------
began=$(date +%s)
install_tools
rm -rf "$OUT"
mkdir -p "$OUT/bin" "$CACHE"
log "tools ready after $(($(date +%s) - began))s; building static binaries"
export CGO_ENABLED=0
"$GO" build -trimpath -ldflags "-X main.version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
	-o "$OUT/bin/droptrace" ./cmd/droptrace
"$GO" test -c -o "$OUT/bin/e2e.test" ./internal/e2e
"$GO" test -c -o "$OUT/bin/netlab.test" ./internal/netlab
"$GO" build -o "$OUT/bin/vmtest-report" ./internal/vmtest/report
"$GO" build -o "$OUT/bin/nicflood" ./internal/vmtest/nicflood

want=${VMTEST_KERNELS:-}
dirs=()
while read -r name pkg suite opts _; do
	case "$name" in "" | \#*) continue ;; esac
	if [ -n "$want" ] && ! grep -qwF -- "$name" <<<"$want"; then continue; fi
	case ",${opts:-}," in
	*,opt-in,*) [ -n "$want" ] || { log "$name: opt-in, not run (VMTEST_KERNELS=$name runs it)"; continue; } ;;
	esac
	ATTACH= ALSO=
	case ",${opts:-}," in *,tracepoint,*) ATTACH=tracepoint ;; esac
	case ",${opts:-}," in *,also-tracepoint,*) ALSO=tracepoint ;; esac
	use_suite "${suite:--}"
	if [ "$pkg" = - ]; then run_host "$name"; else run_vm "$name" "$pkg"; fi
	dirs+=("$OUT/$name")
done <"$KERNELS_FILE"
[ ${#dirs[@]} -gt 0 ] || die "no kernel in $KERNELS_FILE matches VMTEST_KERNELS=$want"

log "all runs done after $(($(date +%s) - began))s"
# Keep in the cache only the builds the packages last resolved to.
for kd in "$CACHE"/linux-image-*_*; do
	[ -d "$kd" ] || continue
	b=$(basename "$kd")
	grep -qxF "${b%%_*} ${b#*_}" "$CACHE"/resolved/* 2>/dev/null || { log "cache: removing $b"; rm -rf "$kd"; }
done
"$OUT/bin/vmtest-report" "${dirs[@]}"
