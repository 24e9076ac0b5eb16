# `make bench`: the Go KMS policy evaluator vs iam-simulate, side by side (docs/evaluator.md).
# Not part of `make test`: timings are for reading, not for passing or failing.
.PHONY: bench
bench: $(TOOLS)/node/.installed
	bench/evaluator.sh
