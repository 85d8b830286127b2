# Warden. `make test` is the one command that runs the whole suite: it installs
# missing Debian packages (as root, apt-get), starts real OpenLDAP, Samba AD DC
# and redis-server on loopback (deploy/testenv/up.sh), runs gofmt/vet and
# `go test -race`, and always stops the servers again, keeping the test result.
#
#   make test         lint + real servers + go test -race ./...   (CI: .ci/run)
#   make test-short   go test without servers (server tests skip; fail if CI=true)
#   make test-under-load  make test while stress-ng --cpu 4 runs beside it
#   make bench        benchmarks against the real servers (BENCH=regexp BENCHTIME=2s)
#   make fuzz         every fuzz target in turn, FUZZTIME each (default 30s; FUZZ=regexp)
#   make lint         gofmt -l must print nothing; go vet
#   make build        static binaries in bin/ (wardend, warden, warden-credentials)
#   make dev          go run ./cmd/wardend -dev
#   make deps         install missing Debian packages (root)
#   make testenv-up   start the servers, print `export` lines (eval "$(make -s testenv-up)")
#   make testenv-down stop them
#   make testenv-verify  check the servers and their seed data (55 checks)
#   make screenshots  the pictures of README.md and docs/ (docs/img), taken by
#                     the browser tests (Chromium) against the real servers

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

export PATH := /usr/local/go/bin:$(PATH)
export TESTENV_DIR ?= /tmp/warden-testenv
# CI=true turns a skipped server test into a failure (internal/testenv)
export CI

GO          ?= go
PKGS        ?= ./...
# per test binary, a guard against a hung test: packages run two at a time
# here and the whole run stays under 10 minutes on an idle 2-core machine;
# under make test-under-load (stress-ng --cpu 4 beside it) internal/app
# alone took 7.6 minutes on 2026-12-06, hence the margin
TEST_TIMEOUT ?= 15m
TESTFLAGS   ?=
# test-under-load: CPU hogs beside make test (4 on this 2-core machine);
# stress-ng's own timeout only bounds a run whose trap never ran
STRESS_CPU  ?= 4
STRESS_TIMEOUT ?= 2h
BENCH       ?= .
BENCHTIME   ?= 2s
BENCHFLAGS  ?= -benchmem
# per fuzz target (go fuzzes one target per run); FUZZMINIMIZETIME is the
# budget to minimize each new input (go's default 60s stalls a short run)
FUZZTIME    ?= 30s
FUZZMINIMIZETIME ?= 1000x
FUZZ        ?= .
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     ?= -s -w -X github.com/wardenidp/warden/internal/version.Version=$(VERSION)

# run a command with the test servers up; always stop them, keep its exit code
define with_testenv
	@deploy/testenv/up.sh >/dev/null
	@trap 'deploy/testenv/down.sh' EXIT; trap 'exit 130' INT TERM; \
	  set -a; . "$(TESTENV_DIR)/env"; set +a; \
	  $(1)
endef

.PHONY: all deps test test-under-load test-short bench fuzz lint build dev testenv-up testenv-down testenv-verify screenshots clean

all: lint build test

deps:
	@deploy/testenv/install-deps.sh

test: deps lint
	$(call with_testenv,$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS))

# the same steps as `make test`, with stress-ng beside them from the first
# to the last; stress-ng is stopped whatever the result (and on ^C), and the
# exit status is make test's
test-under-load: deps
	@command -v stress-ng >/dev/null || { echo "test-under-load: stress-ng missing (make deps as root)" >&2; exit 1; }
	@stress-ng --cpu $(STRESS_CPU) --timeout $(STRESS_TIMEOUT) --quiet & stress=$$!; \
	  trap 'kill $$stress 2>/dev/null || true; wait $$stress 2>/dev/null || true' EXIT; trap 'exit 130' INT TERM; \
	  sleep 1; kill -0 $$stress 2>/dev/null || { echo "test-under-load: stress-ng did not start" >&2; exit 1; }; \
	  echo "test-under-load: stress-ng --cpu $(STRESS_CPU) (pid $$stress) beside make test on $$(nproc) CPUs"; \
	  start=$$(date +%s); rc=0; \
	  $(MAKE) --no-print-directory test || rc=$$?; \
	  echo "test-under-load: make test exited $$rc after $$(( $$(date +%s) - start ))s; load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	  exit $$rc

test-short:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) $(PKGS)

bench: deps
	$(call with_testenv,$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) $(BENCHFLAGS) -timeout 30m $(PKGS))

# every fuzz target one after another, each for FUZZTIME, with the test
# servers up (FuzzSSO's fixture opens its store on redis); prints execs/s per
# target and fails if any target fails (the input is left in testdata/fuzz)
fuzz:
	$(call with_testenv,FUZZTIME=$(FUZZTIME) FUZZMINIMIZETIME=$(FUZZMINIMIZETIME) FUZZ='$(FUZZ)' PKGS='$(PKGS)' GO=$(GO) deploy/testenv/fuzz.sh)

lint:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*')); \
	  if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

dev:
	$(GO) run ./cmd/wardend -dev

testenv-up: deps
	@deploy/testenv/up.sh

testenv-down:
	@deploy/testenv/down.sh

testenv-verify:
	@deploy/testenv/verify.sh

# docs/img: TestBrowserLayout (portal, device, second factor, admin pages,
# 1280x900 and 390x844) and the elevation tests save what README.md and
# docs/ show; TestDocImages checks that every picture they name exists
screenshots: deps
	$(call with_testenv,WARDEN_SCREENSHOTS=$(CURDIR)/docs/img $(GO) test -count=1 -timeout 10m \
	  -run '^(TestBrowserLayout|TestBrowserElevation.*)$$' ./internal/app/)

clean:
	rm -rf $(BIN)
