# `make bench`: the Go KMS policy evaluator vs iam-simulate, side by side (docs/evaluator.md).
# Not part of `make test`: timings are for reading, not for passing or failing.
.PHONY: bench
bench: $(TOOLS)/node/.installed
	bench/evaluator.sh

# The policy parser's fuzz target: the one-pass decoder against encoding/json (run by
# mk/fuzz.mk's fuzz-short in `make test`, and by `make fuzz`).
FUZZ_TARGETS += ./internal/policy:FuzzParse
