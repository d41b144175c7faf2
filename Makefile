# scimbridge's build and test entry points. `make test` is what CI runs (through .ci/run).
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# staticcheck runs through the Go module proxy at this version (no tool dependency in go.mod).
STATICCHECK_VERSION ?= v0.8.2
# FUZZTIME is how long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

.PHONY: all build test test-deps lint quickstart bench fuzz clean

all: build

## build: the static binary, with the flags the Dockerfile uses
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o scimbridge ./cmd/scimbridge

## test: install the test servers when possible, then vet, format check and the whole suite with -race
test: test-deps lint
	$(GO) test -race -timeout 25m ./...
	@# The limiter simulations at 50 and 100 req/s are skipped under -race (ten times slower):
	@# run them once more without it, so that CI checks every rate.
	$(GO) test -count=1 -run 'TestLimiter' ./scim/client/

## test-deps: the Debian packages the tests start as real servers (slapd, Samba AD DC, Chromium)
test-deps:
	@bash .ci/test-deps.sh

## lint: gofmt, go vet, staticcheck (findings in .ci/staticcheck-known.txt let through) and shellcheck on the scripts
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	GO=$(GO) STATICCHECK_VERSION=$(STATICCHECK_VERSION) bash .ci/staticcheck.sh
	@if command -v shellcheck >/dev/null; then shellcheck .ci/*.sh .ci/run; else echo "shellcheck not installed: scripts not linted"; fi

## quickstart: the README's first command
quickstart:
	$(GO) run ./cmd/scimbridge sync --config deploy/examples/scimbridge.yaml

## bench: the Go benchmarks of the plan and the state store
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./scim/plan/ ./scim/state/

## fuzz: every fuzz target of the module, FUZZTIME (10s) each
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash .ci/fuzz.sh

clean:
	rm -rf scimbridge data
