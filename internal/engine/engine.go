// Package engine runs the pure pipeline for one record: diagnose, patch, verify.
package engine
