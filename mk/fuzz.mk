# Fuzzing. Each entry of FUZZ_TARGETS is <package>:<FuzzName>; other mk files may append.
# `make fuzz-short` (part of `make test`) runs each for FUZZTIME_SHORT, `make fuzz` for FUZZTIME.
# Seed corpora are in <package>/testdata/fuzz/<FuzzName>/; a failing input is written there too
# (commit it with the fix: it becomes a regression test of plain `go test`).
FUZZTIME       ?= 5m
FUZZTIME_SHORT ?= 10s
FUZZ_TARGETS   += ./internal/cloudtrail:FuzzParse ./internal/cloudtrail:FuzzParseMessage ./internal/cloudtrail:FuzzReadAll \
                  ./internal/cloudtrail:FuzzMemberValue ./internal/cloudtrail:FuzzReader

# go test fuzzes one target of one package at a time: one command per entry, stopping at
# the first failure.
fuzz_cmd = go test $(word 1,$(subst :, ,$(1))) -run='^$$' -fuzz='^$(word 2,$(subst :, ,$(1)))$$' -fuzztime=$(2)

.PHONY: fuzz fuzz-short
fuzz-short:
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_cmd,$(t),$(FUZZTIME_SHORT)) &&) true

fuzz:
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_cmd,$(t),$(FUZZTIME)) &&) true

TEST_STEPS += fuzz-short
