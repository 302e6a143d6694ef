// SPDX-License-Identifier: Apache-2.0

package tracer

// The generated loaders and objects are committed so that `go build` needs no clang;
// `make generate` refreshes them and a test checks they match the C sources. The compiler is
// pinned to clang-14, Debian bookworm's (see wantClangMajor in generated_test.go): another
// major emits other bytes for the same C.
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel -type drop_key -type drop_event -type drop_packet -type drop_stat -type drop_slot -type drop_cpu -type sock_key -type sock_memo -type sock_fn drops ../../bpf/drops.c -- -I../../bpf/headers -I../../bpf
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel -type netrx_stats -type netrx_cpu -type netrx_config netrx ../../bpf/netrx.c -- -I../../bpf/headers -I../../bpf
