package patch

import (
	"fmt"
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/request"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Verification is what evaluating the world plus the patches showed.
type Verification struct {
	AllowedAfter bool     // every needed action is allowed after patching
	Widened      []string // requests refused before and allowed after that the fix must not allow
}

// OK says the patches fix the request and allow nothing more.
func (v Verification) OK() bool { return v.AllowedAfter && len(v.Widened) == 0 }

// Verify evaluates the denied request, and requests the fix must not open, before and after
// the patches. A key the world does not know is taken as having only the patch's statements.
func Verify(d *cloudtrail.Denial, w *world.World, patches []finding.Patch) Verification {
	before := inputs(d, w, nil)
	after := inputs(d, w, patches)
	// The request context is built once per denial: the action is the only part of
	// request.For's answer that depends on it.
	base := request.For(d, w, first(d.Actions))
	var v Verification
	// Allowed after only when allowed whatever the unknown condition values are: a patch is
	// never verified on an allow that rests on an unknown.
	v.AllowedAfter = len(d.Actions) > 0
	for _, a := range d.Actions {
		r := base
		r.Action = a
		if policy.AuthorizeKMS(r, after.forCaller).Decision != policy.Allow {
			v.AllowedAfter = false
		}
	}
	for _, p := range probes(d, base) {
		in := func(s kmsInputs) policy.KMSInputs {
			switch {
			case p.otherPrincipal:
				return s.forOther
			case p.otherKey:
				// Grants belong to this key and carry no Resource; key-policy statements are
				// still judged by their Resource element, as an independent evaluator would.
				k := s.forCaller
				k.Grants = nil
				return k
			}
			return s.forCaller
		}
		// With unknown condition values, before and after are compared at each bound
		// (policy.KMSResult): every unknown against the request, then every unknown for it.
		// The patch's own statements read only known keys, so a probe it opens is opened at
		// one of the bounds; an allow the world may already give is not the patch's doing.
		b, a := policy.AuthorizeKMS(p.req, in(before)), policy.AuthorizeKMS(p.req, in(after))
		if (b.Decision != policy.Allow && a.Decision == policy.Allow) || (b.Upper != policy.Allow && a.Upper == policy.Allow) {
			v.Widened = append(v.Widened, p.name)
		}
	}
	return v
}

type kmsInputs struct {
	forCaller policy.KMSInputs // the principal's own policies apply
	forOther  policy.KMSInputs // another principal of the account: only the key side applies
}

func inputs(d *cloudtrail.Denial, w *world.World, patches []finding.Patch) kmsInputs {
	in := request.Inputs(d, w)
	for _, p := range patches {
		switch p.Kind {
		case finding.KindIdentityPolicy:
			if p.Target == d.Identity.PrincipalARN && p.Policy != nil {
				in.Identity = append(append([]policy.NamedDocument{}, in.Identity...), policy.NamedDocument{Name: p.Name, Doc: p.Policy})
			}
		case finding.KindKeyPolicyStatement:
			if p.Target == d.KeyARN && p.Statement != nil {
				base := in.KeyPolicy
				if base == nil {
					base = &policy.Document{}
				}
				in.KeyPolicy = base.With(*p.Statement)
			}
		case finding.KindGrant:
			if p.Target == d.KeyARN && p.Grant != nil {
				in.Grants = append(append([]policy.Grant{}, in.Grants...), policy.Grant{Grantee: p.Grant.Grantee, Operations: p.Grant.Operations, EncryptionContextSubset: p.Grant.Context})
			}
		}
	}
	other := policy.KMSInputs{KeyAccount: in.KeyAccount, KeyPolicy: in.KeyPolicy, Grants: in.Grants}
	return kmsInputs{forCaller: in, forOther: other}
}

type probe struct {
	name           string
	req            policy.Request
	otherPrincipal bool
	otherKey       bool
}

// probes are requests the fix must not newly allow (events/README.md, "How a report is
// judged", point 4). base is the denied request (request.For).
//
// A probe that changes a key or two of the context says so in Request.Override instead of
// copying the context's map.
func probes(d *cloudtrail.Denial, base policy.Request) []probe {
	needed := map[string]bool{}
	for _, a := range d.Actions {
		needed[strings.ToLower(a)] = true
	}
	out := make([]probe, 0, 16+6*len(d.Actions))
	add := func(name, action string, over []policy.Override) {
		r := base
		r.Action = action
		r.Override = over
		out = append(out, probe{name: name, req: r})
	}
	// The context of a direct call: no kms:ViaService, aws:ViaAWSService false.
	direct := []policy.Override{{Key: "kms:ViaService", Drop: true}, {Key: "aws:ViaAWSService", Value: "false"}}
	for _, a := range []string{"kms:PutKeyPolicy", "kms:CreateGrant", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:Encrypt", "kms:ReEncryptFrom", "kms:Decrypt", "kms:GenerateDataKey"} {
		if needed[strings.ToLower(a)] {
			continue
		}
		add(a+" via S3", a, nil)
		add(a+" called directly", a, direct)
	}
	viaOther := []policy.Override{{Key: "kms:ViaService", Value: "sqs." + d.Region + ".amazonaws.com"}}
	otherARN := "arn:aws:iam::" + d.Identity.Account + ":role/kmsfix-probe-other-principal"
	otherPrincipal := []policy.Override{{Key: "aws:PrincipalArn", Value: otherARN}}
	for _, action := range d.Actions {
		add(action+" on another key", action, nil)
		out[len(out)-1].req.Resource = otherKey(d.KeyARN)
		out[len(out)-1].otherKey = true
		add(action+" called directly (no kms:ViaService)", action, direct)
		add(action+" through another service", action, viaOther)
		if d.Bucket != "" && !d.DirectoryBucket {
			for _, other := range []string{d.Bucket + "-other", d.Bucket + "x"} {
				add(fmt.Sprintf("%s for bucket %s", action, other), action,
					[]policy.Override{{Key: "kms:EncryptionContext:aws:s3:arn", Value: "arn:aws:s3:::" + other + "/object"}})
			}
		}
		if d.DirectoryBucket && d.ContextARN != "" {
			// Another directory bucket's context: the ARN with another base name.
			other := strings.Replace(d.ContextARN, "bucket/"+d.Bucket, "bucket/x"+d.Bucket, 1)
			add(fmt.Sprintf("%s for directory bucket x%s", action, d.Bucket), action,
				[]policy.Override{{Key: "kms:EncryptionContext:" + cloudtrail.DirectoryContextKey, Value: other}})
		}
		if d.Identity.Account != "" {
			add(action+" by another principal of account "+d.Identity.Account, action, otherPrincipal)
			p := &out[len(out)-1]
			p.req.Caller = policy.Caller{ARN: otherARN, SessionARN: "arn:aws:sts::" + d.Identity.Account + ":assumed-role/kmsfix-probe-other-principal/s", Account: d.Identity.Account}
			p.otherPrincipal = true
		}
	}
	return out
}

func otherKey(arn string) string {
	i := strings.LastIndex(arn, "/")
	if i < 0 {
		return arn + "-other"
	}
	return arn[:i+1] + "00000000-0000-0000-0000-000000000000"
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
