# `make bench`: the Go KMS policy evaluator vs iam-simulate, side by side (docs/evaluator.md).
# Not part of `make test`: timings are for reading, not for passing or failing.
.PHONY: bench
bench: $(TOOLS)/node/.installed
	bench/evaluator.sh

# The policy parser's fuzz target: the one-pass decoder against encoding/json (run by
# mk/fuzz.mk's fuzz-short in `make test`, and by `make fuzz`).
FUZZ_TARGETS += ./internal/policy:FuzzParse

# `make bench-stream`: kmsfix explain on generated trail log files of 10k to 1M records,
# plain and gzipped, and on decompression bombs: wall time, CPU time, max RSS
# (docs/streaming.md). Writes a few GB of inputs under BENCH_STREAM_DIR (kept for reruns).
BENCH_STREAM_DIR ?= $(or $(TMPDIR),/tmp)/kmsfix-bench-stream
BENCH_STREAM_MAX ?= 1000000
.PHONY: bench-stream
bench-stream:
	@mkdir -p $(BENCH_STREAM_DIR)
	go build -o $(BENCH_STREAM_DIR)/kmsfix ./cmd/kmsfix
	go run ./bench/stream -kmsfix $(BENCH_STREAM_DIR)/kmsfix -dir $(BENCH_STREAM_DIR) -max $(BENCH_STREAM_MAX)
