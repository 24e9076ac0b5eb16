// Package testenv holds what every test helper shares, and nothing else:
//
//   - Harness (the part of testing.TB helpers use) and ProcessHarness (the same outside a test:
//     a TestMain, `make invoke`, the storm benchmark);
//   - LockedBuffer, whose WaitFor is the one way to wait for output lines;
//   - AWSFault and Faults, which every fake and the emulators' FaultProxy use to count calls
//     and inject errors or delays, and JSONError;
//   - Clock, and Reports (a notifier that keeps what it was given);
//   - the IAM oracle's names (the oracle itself is the leaf package iamoracle).
//
// The helpers themselves live in three packages below it; pick by what the test needs:
//
//   - emulator: real programs in child processes (local-kms, goaws, dynalite, the Lambda
//     Runtime Interface Emulator), all started by emulator.Launch, the one launcher;
//   - awsfake: httptest wire fakes behind the real SDK clients, only for what no real program
//     emulates (IAM (one fake, read and write), STS, CloudTrail, Access Analyzer,
//     EventBridge, Secrets Manager, S3, the doctor's services, KMS grants, Slack);
//   - corpus: generated CloudTrail data (a day of KMS events, log files).
//
// Dependencies point one way: corpus imports nothing of these; awsfake may import corpus;
// emulator may import awsfake (Services bundles local-kms with the IAM, STS and Access
// Analyzer fakes). New fakes go in awsfake, new emulator processes in emulator through Launch.
package testenv
