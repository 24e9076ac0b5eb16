#!/usr/bin/env bash
# Reproduces the Lambda figures in the README: the shipped bootstrap's size, then cold start
# (process start to first response under the Lambda Runtime Interface Emulator, median),
# warm latency per event (median) and AWS calls per event, cold and warm, against local-kms
# and the IAM/STS/Access Analyzer fakes (goaws and dynalite for the notifier).
# Needs `make tools`; run from anywhere: bench/lambda.sh [iterations, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
make -s build >/dev/null
size=$(stat -c %s dist/bootstrap)
awk -v s="$size" 'BEGIN { printf "bootstrap (linux/arm64, stripped, lambda.norpc): %d bytes = %.1f MiB\n", s, s/1048576 }'
go test -run '^$' -bench 'BenchmarkLambda' -benchtime "${n}x" -count 1 ./functions/remediator |
  grep -E '^(Benchmark|goos|goarch|cpu)'
