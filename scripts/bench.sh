#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: what droptrace costs the host it traces. Installs bpftrace (the peer baseline)
# from Debian when it is missing, mounts tracefs, builds dtbench, and runs it on bin/droptrace:
# loopback UDP floods pinned to one CPU, untraced and traced, interleaved, as ratios; then the
# scale section (0/100/300/1000 idle network namespaces, created and removed). Run as root.
# Arguments go to dtbench (e.g. scripts/bench.sh --rounds 9 --trial 3s).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
GO=${GO:-go}

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (sudo make bench): the floods' tracers need BPF"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs: the flood is pinned to one, the sink and the tracers' userspace use the other"

if ! command -v bpftrace >/dev/null; then
	if command -v apt-get >/dev/null; then
		log "bpftrace is missing; installing it from Debian (apt-get update, apt-get install -y bpftrace)"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq -o DPkg::Lock::Timeout=600 || die "apt-get update failed: install bpftrace yourself, or run dtbench with --no-bpftrace"
		apt-get install -y -qq -o DPkg::Lock::Timeout=600 bpftrace >/dev/null || die "apt-get install bpftrace failed: install it yourself, or run dtbench with --no-bpftrace"
	else
		die "bpftrace is missing and there is no apt-get: install bpftrace (the peer baseline), or run bin/dtbench --no-bpftrace"
	fi
fi
command -v ip >/dev/null || die "the scale section creates network namespaces with ip: install iproute2"
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs nodev /sys/kernel/tracing || die "tracefs is not mounted and mounting it failed (bpftrace needs it)"
fi

mkdir -p bin
# make bench builds bin/droptrace first (with its version); run directly, this builds it.
[ -x bin/droptrace ] || "$GO" build -trimpath -o bin/droptrace ./cmd/droptrace
"$GO" build -trimpath -o bin/dtbench ./cmd/dtbench
log "$(bpftrace --version), kernel $(uname -r), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec bin/dtbench --droptrace bin/droptrace "$@"
