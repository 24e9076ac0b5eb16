// Test oracle: evaluates KMS authorization cases with @cloud-copilot/iam-simulate (AGPL-3.0),
// an independent IAM evaluator. Used ONLY by tests and bench/ scripts, as a separate process;
// nothing shipped imports it. NODE_PATH must point at .tools/node/node_modules.
//
// Input: one JSON case per line on stdin:
//   {"id","principal","action","resource","resourceAccount","context":{k:v},
//    "identity":[{"name","policy"}],"boundary":policy|null,"keyPolicy":policy|null}
// Decision mode (default): one line per case on stdout, in input order:
//   {"id","decision":"Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied","error":"..."}
// With --validate each case is also run through runSimulation, which validates the policies;
// validation errors are reported in "error" so a malformed generated policy cannot pass silently.
// Bench mode (--bench [--rounds N]): reads all cases, then times N rounds of runUnsafeSimulation
// over them inside this process (start-up and JSON parsing excluded) and prints one JSON line:
//   {"requests":…, "rounds":…, "nsPerRequest":…}
'use strict';

const readline = require('node:readline');
const { runSimulation, runUnsafeSimulation } = require('@cloud-copilot/iam-simulate');

const args = process.argv.slice(2);
const bench = args.includes('--bench');
const validate = args.includes('--validate');
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 20;

// toSimulation builds iam-simulate's input. Caveats (toolchain.md, Addendum):
// runUnsafeSimulation takes the context as given (runSimulation drops kms:EncryptionContext:*),
// and needs the resource policy as an already-validated object.
function toSimulation(c) {
  const sim = {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.resourceAccount },
      contextVariables: c.context || {},
    },
    identityPolicies: c.identity || [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
  };
  if (c.boundary) {
    sim.permissionBoundaryPolicies = [{ name: 'boundary', policy: c.boundary }];
  }
  return sim;
}

function withKeyPolicy(sim, c) {
  if (!c.keyPolicy) return sim;
  return {
    ...sim,
    resourcePolicy: {
      __validated: true,
      policyDocument: c.keyPolicy,
      metadata: { name: 'keypolicy' },
      errors: [],
    },
  };
}

function decide(c) {
  return runUnsafeSimulation(withKeyPolicy(toSimulation(c), c), {});
}

async function validationError(c) {
  const sim = toSimulation(c);
  if (c.keyPolicy) sim.resourcePolicy = c.keyPolicy;
  const r = await runSimulation(sim, {});
  if (r.resultType === 'error') return JSON.stringify(r.errors);
  return '';
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const cases = [];
  for await (const line of rl) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    if (bench) {
      cases.push(c);
      continue;
    }
    let decision = '';
    let error = '';
    try {
      decision = decide(c);
      if (validate) error = await validationError(c);
    } catch (e) {
      error = String(e && e.stack ? e.stack : e);
    }
    // Answer at once: the Go side may wait for this line before sending the next case.
    process.stdout.write(JSON.stringify({ id: c.id, decision, error }) + '\n');
  }
  if (!bench) return;

  // Bench: build the simulation objects once, as a caller holding parsed JSON would.
  const sims = cases.map((c) => withKeyPolicy(toSimulation(c), c));
  for (const s of sims) runUnsafeSimulation(s, {}); // warm-up (JIT)
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (const s of sims) {
      if (runUnsafeSimulation(s, {}) === 'Allowed') sink++;
    }
  }
  const elapsed = process.hrtime.bigint() - start;
  const requests = sims.length * rounds;
  process.stdout.write(
    JSON.stringify({
      requests,
      rounds,
      nsPerRequest: Number(elapsed) / requests,
      allowed: sink / rounds,
    }) + '\n',
  );
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
