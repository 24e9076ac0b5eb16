package remediator

import (
	"context"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/world"
)

// sentRequests records the key-policy requests the handler sends.
type sentRequests struct{ keys []string }

func (s *sentRequests) Send(_ context.Context, rep finding.Report) (string, error) {
	s.keys = append(s.keys, rep.Key)
	return "sent", nil
}

// noKeyPolicy is an enricher whose world lacks the key's policy, as the hub's world does when
// the key owner's reader role cannot be assumed (an owner outside the organization).
type noKeyPolicy struct{ fileWorld }

func (n noKeyPolicy) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	w := n.fileWorld.World(ctx, d)
	for _, k := range w.Keys {
		k.Policy = nil
	}
	w.Unreadable = append(w.Unreadable, "the key owner's world (its reader role could not be assumed)")
	return w
}

// In the hub, the key owner's request event goes out only for a key whose policy the hub could
// not read; a single-account stack sends it for every cross-account finding, as before.
func TestHubSendsKeyOwnerRequestOnlyForUnreadKeys(t *testing.T) {
	event, wj := sample(t, "25-cross-account-both-sandboxes")
	event = wrap(t, event) // the hub takes only the envelopes its spokes forward
	cases := []struct {
		name    string
		hub     bool
		unread  bool
		wantReq bool
	}{
		{"hub, key owner read through its spoke", true, false, false},
		{"hub, key owner outside the organization", true, true, true},
		{"single account, key policy read", false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newHarness(t, wj, clean)
			if c.unread {
				x.h.Enricher = noKeyPolicy{fileWorld{wj}}
			}
			sent := &sentRequests{}
			x.h.KeyOwner, x.h.Hub = sent, c.hub
			rep, err := x.h.Handle(context.Background(), event)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Diagnosis != finding.CrossAccountAccessMissing {
				t.Fatalf("diagnosis %q (ignored %q); the case needs a cross-account finding", rep.Diagnosis, rep.Ignored)
			}
			if got := len(sent.keys) == 1; got != c.wantReq || len(sent.keys) > 1 {
				t.Fatalf("requests sent for %v, want one: %v", sent.keys, c.wantReq)
			}
			if c.wantReq && !strings.HasPrefix(sent.keys[0], "arn:") {
				t.Fatalf("request for key %q", sent.keys[0])
			}
		})
	}
}
