package main

import (
	"testing"

	"github.com/kmsfix/kmsfix/internal/crossaccount"
)

// The bus policy, the request rule and the PutEvents condition name the event the function
// sends and accepts (docs/cross-account.md): the two must never drift apart.
func TestRequestEventMatchesFunction(t *testing.T) {
	if requestSource != crossaccount.Source || requestDetailType != crossaccount.DetailType {
		t.Errorf("stack matches %q / %q, the function sends %q / %q", requestSource, requestDetailType, crossaccount.Source, crossaccount.DetailType)
	}
}
