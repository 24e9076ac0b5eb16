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
// Bench mode (--bench [--rounds N]): reads all cases, then times N rounds over them inside
// this process (start-up and JSON parsing excluded; see benchmark below) and prints one line:
//   {"cases","rounds","simulate":{"nsPerRequest","cpuNsPerRequest",…},"authorize":{…}}
'use strict';

const readline = require('node:readline');
const { runSimulation, runUnsafeSimulation } = require('@cloud-copilot/iam-simulate');

const args = process.argv.slice(2);
const bench = args.includes('--bench');
const validate = args.includes('--validate');
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 20;

// toSimulation builds iam-simulate's input. Caveats:
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

  process.stdout.write(JSON.stringify(benchmark(cases, rounds)) + '\n');
}

// benchmark times two things over the same cases, each after a warm-up round (JIT):
//  - simulate: runUnsafeSimulation per request; it loads (parses) every policy on each call,
//    like Go's BenchmarkParseAndAuthorizeKMS;
//  - authorize: iam-simulate's core authorize() on policies and requests built once, like Go's
//    BenchmarkAuthorizeKMS (evaluation only). The same steps as runUnsafeSimulation, minus the
//    per-call loading; its decisions are checked against runUnsafeSimulation's.
// Both wall and process CPU time (user + system, GC included) are reported per request.
function benchmark(cases, rounds) {
  const path = require('node:path');
  const simDir = path.dirname(require.resolve('@cloud-copilot/iam-simulate'));
  const { loadPolicy } = require('@cloud-copilot/iam-policy');
  const { authorize } = require(path.join(simDir, 'core_engine', 'CoreSimulatorEngine.js'));
  const { AwsRequestImpl } = require(path.join(simDir, 'request', 'request.js'));
  const { RequestContextImpl } = require(path.join(simDir, 'requestContext.js'));
  const { DiscoveryContextKeyConstraints } = require(
    path.join(simDir, 'context_keys', 'discoveryContextKeyConstraints.js'),
  );

  const sims = cases.map((c) => withKeyPolicy(toSimulation(c), c));
  const prepared = cases.map((c) => ({
    request: new AwsRequestImpl(
      c.principal,
      { resource: c.resource, accountId: c.resourceAccount },
      c.action,
      new RequestContextImpl(c.context || {}),
    ),
    sessionPolicy: undefined,
    identityPolicies: (c.identity || []).map((p) => loadPolicy(p.policy, { name: p.name })),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.keyPolicy ? loadPolicy(c.keyPolicy, { name: 'keypolicy' }) : undefined,
    permissionBoundaries: c.boundary ? [loadPolicy(c.boundary, { name: 'boundary' })] : undefined,
    vpcEndpointPolicies: undefined,
    simulationParameters: {
      simulationMode: 'Strict',
      discoveryContextKeyConstraints: new DiscoveryContextKeyConstraints([]),
    },
    serviceSettings: { s3: { blockPublicAccess: undefined } },
  }));
  sims.forEach((s, i) => {
    const want = runUnsafeSimulation(s, {});
    const got = authorize(prepared[i]).result;
    if (got !== want) throw new Error(`${cases[i].id}: authorize ${got}, runUnsafeSimulation ${want}`);
  });

  const time = (fn) => {
    let sink = 0;
    for (let i = 0; i < cases.length; i++) if (fn(i) === 'Allowed') sink++; // warm-up
    sink = 0;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < cases.length; i++) if (fn(i) === 'Allowed') sink++;
    }
    const wall = Number(process.hrtime.bigint() - start);
    const cpu = process.cpuUsage(cpu0);
    const requests = cases.length * rounds;
    return {
      requests,
      nsPerRequest: wall / requests,
      cpuNsPerRequest: ((cpu.user + cpu.system) * 1000) / requests,
      allowed: sink / rounds,
    };
  };
  return {
    cases: cases.length,
    rounds,
    simulate: time((i) => runUnsafeSimulation(sims[i], {})),
    authorize: time((i) => authorize(prepared[i]).result),
  };
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
