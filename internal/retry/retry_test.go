package retry

import (
	"errors"
	"fmt"
	"testing"
)

type typed struct{ code int }

func (t *typed) Error() string { return fmt.Sprint("typed ", t.code) }

func TestPermanent(t *testing.T) {
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) is not nil")
	}
	base := &typed{code: 7}
	err := fmt.Errorf("notify ev-1: %w", Permanent(base))
	if !IsPermanent(err) {
		t.Fatal("a wrapped permanent error is not permanent")
	}
	if got := Reason(err); got != "typed 7" {
		t.Fatalf("Reason = %q, want the marked error's own text", got)
	}
	var tt *typed
	if !errors.As(err, &tt) || tt.code != 7 {
		t.Fatal("the marked error's own type is not found through the mark")
	}
	if Permanent(base).Error() != base.Error() {
		t.Fatal("the mark changes the text")
	}
	plain := fmt.Errorf("throttled: %w", base)
	if IsPermanent(plain) || Reason(plain) != "" {
		t.Fatal("an unmarked error is permanent")
	}
	if !IsPermanent(errors.Join(plain, Permanent(base))) {
		t.Fatal("a joined permanent error is not found")
	}
}
