package apply

// Emulators for the external test package (handler_test.go).
func EmulatorURLs() (kmsURL, dynamoURL string) { return emu.kms, emu.dynamo }

// TestSealer is newSealer for the external test package.
var TestSealer = newSealer
