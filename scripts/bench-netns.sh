#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Scale benchmark: droptrace's CPU and peak RSS at --interval 1s on an idle host with N idle
# `ip netns` namespaces (lo up, no traffic). Creates the namespaces (prefix dtscale-), runs
# BIN for SECS seconds, reads its CPU time from /proc/<pid>/stat and VmHWM from status, and
# removes every namespace it created, even on failure. Run as root.
# Usage: scripts/bench-netns.sh BIN SECS N...
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
bin=$1 secs=$2
shift 2
[ "$(id -u)" = 0 ] || { echo "bench-netns: run as root" >&2; exit 1; }
cleanup() {
	for ns in $(ip netns list | awk '/^dtscale-/{print $1}'); do ip netns del "$ns" || true; done
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)
printf '| namespaces | CPU (%% of one CPU) | peak RSS (MiB) |\n|---:|---:|---:|\n'
for n in "$@"; do
	cleanup
	for i in $(seq 1 "$n"); do
		ip netns add "dtscale-$i"
		ip -n "dtscale-$i" link set lo up
	done
	"$bin" --interval 1s --live off --output /dev/null >/dev/null 2>&1 &
	pid=$!
	sleep 3 # start-up (BPF load, first listing) is not the steady state
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	sleep "$secs"
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	hwm=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
	kill -INT "$pid"
	wait "$pid" || true
	awk -v n="$n" -v d=$((t1 - t0)) -v tck="$tck" -v s="$secs" -v h="$hwm" \
		'BEGIN{printf "| %d | %.1f%% | %.0f |\n", n, 100*d/tck/s, h/1024}'
done
