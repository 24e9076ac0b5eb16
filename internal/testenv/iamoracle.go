package testenv

// The IAM oracle (oracle.cjs running @cloud-copilot/iam-simulate) lives in the leaf package
// internal/testenv/iamoracle, which internal/policy's own tests can import; these names keep
// testenv's callers unchanged.

import "github.com/kmsfix/kmsfix/internal/testenv/iamoracle"

// IAMOracleScript is the oracle's path relative to the repository root.
const IAMOracleScript = iamoracle.Script

type (
	IAMOracleCase   = iamoracle.Case
	IAMOraclePolicy = iamoracle.Policy
	IAMOracleAnswer = iamoracle.Answer
	IAMOracle       = iamoracle.Oracle
)

// StartIAMOracle starts the oracle with args (e.g. "--validate"); see iamoracle.Start.
func StartIAMOracle(t Harness, args ...string) *IAMOracle {
	t.Helper()
	return iamoracle.Start(t, args...)
}
