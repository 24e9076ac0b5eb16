// Package emulator runs real emulators as child processes for tests: local-kms (behind a
// shim for what it lacks), goaws (SNS), dynalite (DynamoDB) and aws-lambda-rie (the Lambda
// Runtime Interface Emulator running the real bootstrap), plus Services, the set of AWS
// endpoints the remediator function reads.
//
// Launch is the only way to start a process here: it binds nothing itself, gives the child
// fresh loopback ports, and is ready only when a process of the child's own process group
// listens on the first port (checked through /proc), retrying on fresh ports when the child
// cannot bind. Every process is killed, with its group, at the test's cleanup. FaultProxy
// sits in front of an emulator to make chosen operations fail.
//
// Each test owns its state: start its own emulator, or use its own table, topic, key or
// queue names in a shared one, so that `go test -count=N` passes.
package emulator
