# SPDX-License-Identifier: Apache-2.0
# droptrace: `make run` starts a tracing session, `make test` runs every test (as root).

GO        ?= go
BIN       := bin/droptrace
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
ARGS      ?=
# Privileged tests need root; sudo is used only when not root already.
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo -E)
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with "context deadline
# exceeded" when a duration runs out under load (golang/go#75804, fixed in 1.27).
FUZZTIME  ?= 50000x
# The renderers' targets draw a whole screen or report per input (milliseconds each, not
# microseconds like a parser's), so they get fewer inputs.
FUZZTIME_RENDER ?= 2000x
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help build run test unit fuzz lint generate tracefs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/droptrace (no clang needed: BPF objects are committed)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/droptrace

run: build tracefs ## build and start a live tracing session as root (ARGS="--duration 30s --output x.jsonl")
	$(SUDO) ./$(BIN) $(ARGS)

test: build tracefs ## vet, all tests including privileged end-to-end ones (as root), short fuzzing
	$(GO) vet ./...
	$(SUDO) $(GO) test -p 1 -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz

fuzz: ## run every fuzz target for FUZZTIME (the renderers' for FUZZTIME_RENDER)
	@set -e; for pkg in $$($(GO) list ./internal/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    t=$(FUZZTIME); case $$f in FuzzRender*) t=$(FUZZTIME_RENDER);; esac; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $$t $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  done; done

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

generate: ## regenerate BPF objects and loaders from bpf/*.c (needs clang-14 and llvm-14: the committed objects are Debian bookworm's clang 14 output)
	$(GO) generate ./internal/tracer ./internal/netlab

tracefs: ## mount tracefs when it is missing (classic tracepoints need it)
	@test -d /sys/kernel/tracing/events || $(SUDO) mount -t tracefs nodev /sys/kernel/tracing || true

.PHONY: vmtest
vmtest: ## run the end-to-end tests on Debian's 5.10, 6.1 and 6.12 kernels under qemu, and on this one (as root)
	$(SUDO) scripts/vmtest.sh

clean:
	rm -rf bin

.PHONY: bench storm
BENCHARGS ?=
bench: build tracefs ## droptrace's cost: untraced vs traced loopback UDP floods, as ratios (as root; BENCHARGS="--rounds 9")
	$(SUDO) scripts/bench.sh $(BENCHARGS)

STORM     ?= 60s
storm: tracefs ## the drop-storm test at full length (STORM=60s; make test runs it for 4s)
	$(SUDO) env DROPTRACE_STORM=$(STORM) $(GO) test -count=1 -timeout 10m -run '^TestPrivDropStorm$$' -v ./internal/e2e
