package emulator

import (
	"github.com/kmsfix/kmsfix/internal/testenv"
)

// Bare endpoints, for tests that build their own clients (apply, cross-account): local-kms
// without the shim, dynalite without the fault proxy.

// LocalKMSEndpoint starts local-kms on a free loopback port for account and region and returns
// its endpoint URL; it is killed at cleanup.
func LocalKMSEndpoint(t testenv.Harness, account, region string) string {
	t.Helper()
	return runLocalKMS(t, account, region, nil)
}

// DynaliteEndpoint starts dynalite (tables ready at once) on a free loopback port and returns
// its endpoint URL; it is killed at cleanup.
func DynaliteEndpoint(t testenv.Harness) string {
	t.Helper()
	return StartDynalite(t).Direct
}
