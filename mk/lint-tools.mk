# Lint tools (versions pinned in mk/tools.mk): staticcheck, govulncheck and an offline
# vulnerability database. Everything is built with the one toolchain the Makefile exports
# (GOTOOLCHAIN, from go.mod): govulncheck must be built by the toolchain it checks with.
#
# Refresh the database: raise VULNDB_VERSION in mk/tools.mk to a newer golang.org/x/vulndb
# pseudo-version (`go list -m -versions golang.org/x/vulndb` or its latest commit), then
# `rm -rf .tools/vulndb && make lint-tools` rebuilds .tools/vulndb from that module's OSV files.
LINT_TOOLS := $(TOOLS)/bin/staticcheck $(TOOLS)/bin/govulncheck $(TOOLS)/vulndb/index/db.json

lint-tools: $(LINT_TOOLS)

$(TOOLS)/bin/staticcheck:
	go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/bin/govulncheck:
	go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION)

$(TOOLS)/bin/indexdb:
	go install golang.org/x/vulndb/cmd/indexdb@$(VULNDB_VERSION)

# The default database is unreachable here; build one from the OSV files of the vulndb module.
$(TOOLS)/vulndb/index/db.json: $(TOOLS)/bin/indexdb
	cd "$${TMPDIR:-/tmp}" && go mod download golang.org/x/vulndb@$(VULNDB_VERSION)
	rm -rf $(TOOLS)/vulndb
	indexdb -vulns "$$(go env GOMODCACHE)/golang.org/x/vulndb@$(VULNDB_VERSION)/data/osv" -out $(TOOLS)/vulndb
