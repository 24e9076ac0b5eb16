package apply

import (
	"strings"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/engine"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

const (
	sandbox   = "111122223333"
	other     = "444455556666"
	region    = "us-east-1"
	roleARN   = "arn:aws:iam::111122223333:role/app/reader"
	remARN    = "arn:aws:iam::111122223333:role/kmsfix-remediator"
	bucket    = "data-bucket"
	objectKey = "reports/2026/q3.csv"
)

func keyARNIn(account string) string {
	return "arn:aws:kms:us-east-1:" + account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
}

// denialOpts describes one denial for a test.
type denialOpts struct {
	kind      cloudtrail.PrincipalKind
	principal string
	account   string
	key       string
	msg       cloudtrail.MessageKind
	bucketKey bool
	eventID   string
}

func item(o denialOpts) cloudtrail.Item {
	if o.kind == "" {
		o.kind = cloudtrail.KindRole
	}
	if o.principal == "" {
		o.principal = roleARN
	}
	if o.account == "" {
		o.account = sandbox
	}
	if o.key == "" {
		o.key = keyARNIn(sandbox)
	}
	ctx := "arn:aws:s3:::" + bucket + "/" + objectKey
	obj := objectKey
	if o.bucketKey {
		ctx, obj = "arn:aws:s3:::"+bucket, ""
	}
	editable := o.kind == cloudtrail.KindRole || o.kind == cloudtrail.KindUser
	if o.eventID == "" {
		o.eventID = "ev-1"
	}
	d := &cloudtrail.Denial{
		EventID: o.eventID, EventTime: "2026-11-29T05:00:00Z", EventName: "Decrypt", Region: region,
		RecipientAccount: o.account, ErrorCode: "AccessDenied",
		Message: cloudtrail.Message{Kind: o.msg, Action: "kms:Decrypt", Resource: o.key},
		Identity: cloudtrail.Identity{Type: "AssumedRole", Kind: o.kind, PrincipalARN: o.principal,
			SessionARN: "arn:aws:sts::" + o.account + ":assumed-role/reader/s1", Account: o.account, Editable: editable},
		KeyARN: o.key, KeyAccount: accountOfKey(o.key), KeyRegion: region, Partition: "aws",
		ContextARN: ctx, Bucket: bucket, Object: obj, BucketKey: o.bucketKey, Actions: []string{"kms:Decrypt"},
	}
	if !editable {
		d.Identity.NotEditable = "not editable in this test"
	}
	return cloudtrail.Item{EventID: d.EventID, Denial: d}
}

func accountOfKey(arn string) string { return AccountOf(arn) }

// keyPolicy is a key policy that delegates to the account (rootDelegation) or names only an
// administrator role.
func keyPolicy(account string, rootDelegation bool) *policy.Document {
	text := `{"Version":"2012-10-17","Statement":[{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:role/admin"},"Action":"kms:*","Resource":"*"}]}`
	if rootDelegation {
		text = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`
	}
	d, err := policy.Parse([]byte(text))
	if err != nil {
		panic(err)
	}
	return d
}

func worldFor(key string, kp *policy.Document, principal string) *world.World {
	return &world.World{
		SandboxAccounts: []string{sandbox},
		Keys:            map[string]*world.Key{key: {Manager: world.ManagerCustomer, State: world.StateEnabled, Policy: kp, GrantsKnown: true, Grants: []world.Grant{}, Tags: optIn()}},
		Principals:      map[string]*world.Principal{principal: {Policies: []world.NamedPolicy{}, Tags: optIn()}},
	}
}

// report runs the real engine on a denial.
func report(o denialOpts, w *world.World) finding.Report {
	return engine.Explain(item(o), w)
}

// denialOf is the parsed denial a hand-written test report would have come from. Production
// code never rebuilds a denial from a report: the handler passes the parsed one along
// (Applier.Apply, Decide). The tests write reports field by field and edit them per case,
// so the fixture derives the matching denial from the edited report.
func denialOf(r *finding.Report) *cloudtrail.Denial {
	partition := "aws"
	if p := strings.SplitN(r.Key, ":", 3); len(p) == 3 && p[1] != "" {
		partition = p[1]
	}
	keyRegion := ""
	if p := strings.SplitN(r.Key, ":", 5); len(p) == 5 {
		keyRegion = p[3]
	}
	ctxARN := ""
	if r.Bucket != "" {
		ctxARN = "arn:" + partition + ":s3:::" + r.Bucket
		if r.Object != "" {
			ctxARN += "/" + r.Object
		}
	}
	editable, why := IdentityEditable(r)
	return &cloudtrail.Denial{
		EventID:    r.EventID,
		Region:     r.Region,
		KeyARN:     r.Key,
		KeyAccount: r.KeyAccount,
		KeyRegion:  keyRegion,
		Partition:  partition,
		ContextARN: ctxARN,
		Bucket:     r.Bucket,
		Object:     r.Object,
		BucketKey:  r.Bucket != "" && r.Object == "",
		Actions:    r.Actions,
		Identity: cloudtrail.Identity{
			Kind:         cloudtrail.PrincipalKind(r.PrincipalType),
			SessionARN:   r.SessionARN,
			PrincipalARN: r.Principal,
			Account:      r.PrincipalAccount,
			Editable:     editable,
			NotEditable:  why,
		},
	}
}

// optIn is the opt-in tag apply mode's IAM policy requires on what it changes (a fresh map).
func optIn() map[string]string {
	return map[string]string{config.AutoFixTagKey: config.AutoFixTagValue}
}
