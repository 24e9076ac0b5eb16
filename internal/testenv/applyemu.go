package testenv

// The emulators the apply tests run: local-kms (key policies) and dynalite (the audit table),
// each reached directly by its URL. Names carry "Apply" so they cannot collide with other
// helpers' files in this package.

// ApplyLocalKMS starts local-kms on a free loopback port for account and region and returns
// its endpoint URL; it is killed at cleanup.
func ApplyLocalKMS(t Harness, account, region string) string {
	t.Helper()
	return runLocalKMS(t, account, region, nil)
}

// ApplyDynalite starts dynalite (tables ready at once) on a free loopback port and returns
// its endpoint URL; it is killed at cleanup.
func ApplyDynalite(t Harness) string {
	t.Helper()
	return StartDynalite(t).Direct
}
