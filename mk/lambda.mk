# The remediator Lambda: `make build` (the shipped linux/arm64 bootstrap, built like everything
# with go.mod's toolchain, which govulncheck reports clean), `make build-host` (the same for this machine, used by
# the emulator tests and `make invoke`), `make invoke EVENT=... [WORLD=...]`, `make lint`.
.PHONY: build build-host invoke lint vulncheck-bootstrap bench-lambda

LAMBDA_PKG   := ./functions/remediator
LAMBDA_FLAGS := -trimpath -ldflags="-s -w" -tags lambda.norpc

build:
	mkdir -p dist
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build $(LAMBDA_FLAGS) -o dist/bootstrap $(LAMBDA_PKG)
	@ls -l dist/bootstrap

build-host:
	mkdir -p dist/host
	CGO_ENABLED=0 go build $(LAMBDA_FLAGS) -o dist/host/bootstrap $(LAMBDA_PKG)

# EVENT is required; WORLD defaults to the world.json beside the event, if there is one.
WORLD ?= $(wildcard $(dir $(EVENT))world.json)
invoke: tools build-host
	@test -n "$(EVENT)" || { echo "usage: make invoke EVENT=events/x/event.json [WORLD=events/x/world.json]"; exit 2; }
	go run ./functions/remediator/localinvoke -bootstrap dist/host/bootstrap -event $(EVENT) $(if $(WORLD),-world $(WORLD))

# govulncheck runs under the one toolchain (GOTOOLCHAIN, exported by the Makefile), against the
# offline database (mk/lint-tools.mk).
lint: lint-tools
	go vet ./...
	staticcheck ./...
	govulncheck -db file://$(TOOLS)/vulndb ./...

# The shipped binary itself, as deployed (binary mode reads its embedded build information).
vulncheck-bootstrap: build lint-tools
	govulncheck -db file://$(TOOLS)/vulndb -mode binary dist/bootstrap

# Figures for the README: bootstrap size, cold start, warm latency, AWS calls per event.
bench-lambda: tools build
	bench/lambda.sh

TEST_STEPS += lint
