# hvnode — the two commands a newcomer runs: `make image` and `make test`.
#
# Caches live outside the clone so that a fresh clone reuses them; a missing
# cache only makes things slower.
SHELL := /bin/bash
HVNODE_CACHE ?= $(HOME)/.cache/hvnode
export HVNODE_CACHE
export CARGO_TARGET_DIR ?= $(HVNODE_CACHE)/target
export HVNODE_VENV ?= $(HVNODE_CACHE)/venv
CARGO ?= cargo

.PHONY: all test deps fmt-check clippy unit image fuzz bench-boot bench-update bench-iso

all: test

## Install what the tests need (apt packages, the pykickstart venv); idempotent.
deps:
	tests/deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit: deps
	tests/run-tests.sh

## Everything CI runs: formatting, lints, every test suite; ends with the
## time of each phase and of each VM test (tests/ci.sh).
test:
	tests/ci.sh

## Fuzz a parser (cargo-fuzz, libFuzzer); FUZZ_SECONDS to set the length, FUZZ_TARGET
## the target (default kickstart_parse; `tests/fuzz.sh --list` names them all).
fuzz:
	FUZZ_TARGET=$(FUZZ_TARGET) tests/fuzz.sh $(FUZZ_SECONDS)

## Build the node image into out/ (needs root: mmdebstrap, chroot, loop-free ext4/squashfs).
image: deps
	$(CARGO) build --release --workspace
	$(CARGO_TARGET_DIR)/release/hvnode build image/hvnode.toml --out out

## Boot times under TCG: power-on → login prompt → console on 9090, live ISO
## and installed disk, median of 3 (builds the image first).
bench-boot: image
	HVNODE_IMAGE_DIR=$(CURDIR)/out $(CARGO) bench -p hvnode-vmtest --bench boot

## Update time and space per store (btrfs and plain on loop devices, as
## root), against a plain copy of the image (builds the image first).
bench-update: image
	HVNODE_IMAGE_DIR=$(CURDIR)/out $(CARGO) bench -p hvnode-update --bench update

## `hvnode iso customize` on the image's ISO (every option; then show, reset
## and the reset ISO's sha256 against the build's). Uses the ISO in
## HVNODE_IMAGE_DIR (default $(HVNODE_CACHE)/out) and does not build one.
bench-iso:
	HVNODE_IMAGE_DIR=$${HVNODE_IMAGE_DIR:-$(HVNODE_CACHE)/out} $(CARGO) bench -p hvnode-image-build --bench iso_customize

## The engine's link under load: Host.getStats round trips (one at a time, and 10
## connections at once) and hvnode-vdsm's memory, idle and with 10 engine
## connections (libvirt's test driver, through the libvirtd deps starts).
.PHONY: bench-vdsm
bench-vdsm: deps
	$(CARGO) bench -p hvnode-vdsm --bench engine_link

## The console under load: one VM console streaming (its RSS, the relay's added
## latency per frame against the VNC server's socket read directly), then the login
## page while a client holds idle connections. libvirt's test driver, through the
## libvirtd deps starts; as root.
.PHONY: bench-console
bench-console: deps
	$(CARGO) bench -p hvnode-console --bench vm_console
	$(CARGO) bench -p hvnode-console --bench idle_connections
