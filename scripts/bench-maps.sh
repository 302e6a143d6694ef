#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`, scale section, BPF maps: the kernel memory of droptrace's maps at 2, 64 and 256
# possible CPUs (computed as the kernel charges it, dtbench --kmem), and the CPU time a session
# spends on the maps each interval on this host's possible CPUs, for generations of 300, 1000
# and 3000 keys each counted on every CPU (BenchmarkPrivMapRead: cpu-ns/interval; batch and
# iterate compare one read of drop_counts by batch lookups and key by key). Run as root.
# Arguments go to the benchmark (e.g. scripts/bench-maps.sh -test.benchtime 50x).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "bench-maps: run as root (sudo make bench): the map reads need BPF" >&2
	exit 1
fi
go=${GO:-go}
command -v "$go" >/dev/null || go=/usr/local/go/bin/go
mkdir -p bin
"$go" build -trimpath -o bin/dtbench ./cmd/dtbench
"$go" test -c -o bin/tracer.test ./internal/tracer
echo "## Kernel memory of the maps by possible CPUs"
bin/dtbench --kmem 2,64,256
echo
echo "## Map reads per interval: $(cat /sys/devices/system/cpu/possible) possible CPUs, kernel $(uname -r)"
bin/tracer.test -test.run '^$' -test.bench 'BenchmarkPrivMapRead' -test.benchtime 30x "$@"
