// SPDX-License-Identifier: Apache-2.0

package netlab

// A slow generic-XDP program for inducing time squeezes in tests; committed like the tracer's.
//go:generate go tool bpf2go -cc clang-14 -cflags "-O2 -g -Wall -Werror" -target bpfel slowxdp ../../bpf/slow_xdp.c -- -I../../bpf/headers -I../../bpf
