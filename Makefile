# SPDX-License-Identifier: Apache-2.0
# droptrace: `make run` starts a tracing session, `make test` runs every test (as root).

GO        ?= go
BIN       := bin/droptrace
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
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
	rm -rf bin dist

.PHONY: bench storm
BENCHARGS ?=
bench: build tracefs ## droptrace's cost: untraced vs traced loopback UDP floods as ratios, then idle namespaces at scale (as root; BENCHARGS="--rounds 9")
	$(SUDO) scripts/bench.sh $(BENCHARGS)
	$(SUDO) scripts/bench-maps.sh

STORM     ?= 60s
storm: tracefs ## the drop-storm test at full length (STORM=60s; make test runs it for 4s)
	$(SUDO) env DROPTRACE_STORM=$(STORM) $(GO) test -count=1 -timeout 10m -run '^TestPrivDropStorm$$' -v ./internal/e2e

# Release artefacts (docs/releasing.md). The image's name is the one
# deploy/kubernetes/daemonset.yaml runs; deploy/deploy_test.go checks they agree.
IMAGE     ?= ghcr.io/droptrace/droptrace
ARCHES    := amd64 arm64
HOSTARCH  := $(shell $(GO) env GOARCH)
DEB_VERSION ?= $(shell scripts/debversion.sh '$(VERSION)' "$$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d)")
DEB_MAINTAINER ?= droptrace developers <droptrace@users.noreply.github.com>
NFPM      := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

.PHONY: dist image deb release-test
dist: ## static binaries for linux/amd64 and arm64, version stamped, and SHA256SUMS, in dist/
	rm -rf dist && mkdir -p dist
	@set -e; for a in $(ARCHES); do echo "build dist/droptrace-linux-$$a"; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$a $(GO) build -trimpath -buildvcs=false \
	    -ldflags '-s -w $(LDFLAGS)' -o dist/droptrace-linux-$$a ./cmd/droptrace; done
	cd dist && sha256sum droptrace-linux-* > SHA256SUMS

image: dist ## the image ghcr.io/droptrace/droptrace:VERSION and :latest (IMAGE=), this host's architecture, with podman
	podman build --pull=never --layers=false --timestamp 0 --arch $(HOSTARCH) --build-arg TARGETARCH=$(HOSTARCH) \
	  --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f Containerfile .

deb: dist ## Debian packages for amd64 and arm64 in dist/: binary, unit, man page, docs (nfpm)
	./dist/droptrace-linux-$(HOSTARCH) manpage | gzip -9n > dist/droptrace.1.gz
	mkdir -p dist/doc && cp docs/*.md docs/*.png dist/doc/
	printf -- '- semver: "%s"\n  date: "%s"\n  packager: "%s"\n  deb:\n    urgency: medium\n    distributions: [unstable]\n  changes:\n    - note: "Built from commit %s."\n' \
	  '$(DEB_VERSION)-1' "$$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)" '$(DEB_MAINTAINER)' '$(COMMIT)' > dist/changelog.yaml
	@set -e; for a in $(ARCHES); do \
	  DEB_ARCH=$$a DEB_VERSION='$(DEB_VERSION)' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	    $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p deb -t dist/droptrace_$(DEB_VERSION)-1_$$a.deb; done

release-test: image deb ## test the artefacts as installed: image, the capability set, the .deb (as root)
	$(SUDO) env GO=$(GO) IMAGE=$(IMAGE) VERSION=$(VERSION) HOSTARCH=$(HOSTARCH) DEB_VERSION='$(DEB_VERSION)' scripts/release-test.sh
