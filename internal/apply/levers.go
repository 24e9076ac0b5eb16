package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	accesstypes "github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/policy"
)

// KeyPolicyAPI reads and writes key policies; *kms.Client satisfies it.
type KeyPolicyAPI interface {
	GetKeyPolicy(ctx context.Context, in *kms.GetKeyPolicyInput, opts ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
	PutKeyPolicy(ctx context.Context, in *kms.PutKeyPolicyInput, opts ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
}

// GrantAPI creates, lists and retires grants; *kms.Client satisfies it.
type GrantAPI interface {
	CreateGrant(ctx context.Context, in *kms.CreateGrantInput, opts ...func(*kms.Options)) (*kms.CreateGrantOutput, error)
	ListGrants(ctx context.Context, in *kms.ListGrantsInput, opts ...func(*kms.Options)) (*kms.ListGrantsOutput, error)
	RetireGrant(ctx context.Context, in *kms.RetireGrantInput, opts ...func(*kms.Options)) (*kms.RetireGrantOutput, error)
}

// IAMAPI manages inline policies of roles and users; *iam.Client satisfies it.
type IAMAPI interface {
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, opts ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, opts ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, opts ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, opts ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, opts ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
}

// AnalyzerAPI is IAM Access Analyzer's policy checks; *accessanalyzer.Client satisfies it.
type AnalyzerAPI interface {
	ValidatePolicy(ctx context.Context, in *accessanalyzer.ValidatePolicyInput, opts ...func(*accessanalyzer.Options)) (*accessanalyzer.ValidatePolicyOutput, error)
	CheckAccessNotGranted(ctx context.Context, in *accessanalyzer.CheckAccessNotGrantedInput, opts ...func(*accessanalyzer.Options)) (*accessanalyzer.CheckAccessNotGrantedOutput, error)
}

// errConcurrent: the key policy kept changing under us.
var errConcurrent = errors.New("the key policy changed while it was being written (retried once)")

// prepared is a change ready to make: the audit fields and the exact write calls.
type prepared struct {
	rec   Record
	calls []string
	cand  Candidate
}

// call renders one API call exactly as it would be made: operation and input.
func call(op string, in any) string {
	b, err := marshal(in)
	if err != nil {
		return op + " <unencodable input>"
	}
	return op + " " + b
}

// marshal writes JSON without HTML escaping, so policies keep their text.
func marshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimRight(buf.String(), "\n"), nil
}

// marshalPolicy writes a key policy with every statement read from the service exactly as it
// was read (encoding/json would re-indent them): others' statements stay byte-for-byte.
func marshalPolicy(d *policy.Document) (string, error) {
	var b strings.Builder
	b.WriteString("{")
	for _, f := range []struct{ name, v string }{{"Version", d.Version}, {"Id", d.ID}} {
		if f.v != "" {
			v, err := marshal(f.v)
			if err != nil {
				return "", err
			}
			b.WriteString(`"` + f.name + `":` + v + ",")
		}
	}
	b.WriteString(`"Statement":[`)
	for i, s := range d.Statement {
		raw, err := s.MarshalJSON()
		if err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.Write(raw)
	}
	b.WriteString("]}")
	return b.String(), nil
}

// canonical is a JSON text with formatting and key order normalised, to compare documents a
// service may have reformatted.
func canonical(text string) string {
	var v any
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "invalid:" + text
	}
	s, _ := marshal(v)
	return s
}

func sameJSON(a, b string) bool { return canonical(a) == canonical(b) }

// nonSpace counts what IAM counts against inline-policy quotas: characters but whitespace.
func nonSpace(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

func decodePatch(rec *Record) (finding.Patch, error) {
	var p finding.Patch
	if err := json.Unmarshal([]byte(rec.Patch), &p); err != nil {
		return p, fmt.Errorf("change %s: patch: %w", rec.ID, err)
	}
	return p, nil
}

// validate asks Access Analyzer about a document; checkDoc is what CheckAccessNotGranted
// reads (the patch alone for a key policy: the merged policy's admin statements would fail it).
func (a *Applier) validate(ctx context.Context, doc, checkDoc string, typ accesstypes.PolicyType) (Validation, error) {
	var v Validation
	if a.Analyzer == nil {
		return v, errors.New("IAM Access Analyzer is not configured")
	}
	var token *string
	for {
		out, err := a.Analyzer.ValidatePolicy(ctx, &accessanalyzer.ValidatePolicyInput{
			PolicyDocument: &doc, PolicyType: typ, NextToken: token,
		})
		if err != nil {
			return v, fmt.Errorf("access analyzer ValidatePolicy: %w", err)
		}
		for _, f := range out.Findings {
			v.Findings = append(v.Findings, f.FindingType)
			v.Messages = append(v.Messages, aws.ToString(f.IssueCode)+" "+aws.ToString(f.FindingDetails))
		}
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	out, err := a.Analyzer.CheckAccessNotGranted(ctx, &accessanalyzer.CheckAccessNotGrantedInput{
		PolicyDocument: &checkDoc,
		PolicyType:     accesstypes.AccessCheckPolicyType(typ),
		Access:         []accesstypes.Access{{Actions: AdminActions}},
	})
	if err != nil {
		return v, fmt.Errorf("access analyzer CheckAccessNotGranted: %w", err)
	}
	v.NotGranted = out.Result
	v.NotGrantedWhy = aws.ToString(out.Message)
	return v, nil
}

// ---- key policy: append one statement -------------------------------------------------

func regionOpt(region string) func(*kms.Options) {
	return func(o *kms.Options) {
		if region != "" {
			o.Region = region
		}
	}
}

func (a *Applier) getKeyPolicy(ctx context.Context, keyARN, region string) (string, *policy.Document, error) {
	out, err := a.KMS.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: &keyARN, PolicyName: aws.String("default")}, regionOpt(region))
	if err != nil {
		return "", nil, fmt.Errorf("GetKeyPolicy %s: %w", keyARN, err)
	}
	text := aws.ToString(out.Policy)
	var doc policy.Document
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		return "", nil, fmt.Errorf("key policy of %s is not JSON: %w", keyARN, err)
	}
	return text, &doc, nil
}

func putKeyPolicyInput(keyARN, text string) *kms.PutKeyPolicyInput {
	return &kms.PutKeyPolicyInput{
		KeyId: &keyARN, PolicyName: aws.String("default"), Policy: &text,
		BypassPolicyLockoutSafetyCheck: lockoutSafetyBypass,
	}
}

func (a *Applier) prepareKeyPolicy(ctx context.Context, c Candidate, region string, resuming bool) (*prepared, string, error) {
	st := c.Patch.Statement
	if st == nil {
		return nil, "the patch has no statement", nil
	}
	before, doc, err := a.getKeyPolicy(ctx, c.Patch.Target, region)
	if err != nil {
		return nil, "", err
	}
	if have, ok := doc.StatementBySid(st.Sid); ok {
		if !resuming {
			return nil, "the key policy already has a statement " + st.Sid + " that no active automatic change made; not touching it", nil
		}
		if !sameStatement(have, *st) {
			return nil, "the key policy has a different statement " + st.Sid + "; not touching it", nil
		}
		// Our unfinished change's own statement: check the policy as it would be with it once.
		doc = without(doc, st.Sid)
	}
	after, err := marshalPolicy(doc.With(*st))
	if err != nil {
		return nil, "", err
	}
	alone, _ := marshal(&policy.Document{Version: "2012-10-17", Statement: policy.Statements{*st}})
	v, err := a.validate(ctx, after, alone, accesstypes.PolicyTypeResourcePolicy)
	if err != nil {
		return nil, "", err
	}
	v.Size, v.Limit, v.What = len(after), MaxKeyPolicyBytes, "key policy (bytes)"
	if why := CheckValidation(v, true); why != "" {
		return nil, why, nil
	}
	return &prepared{
		rec:   Record{Before: before, After: after},
		calls: []string{call("kms:PutKeyPolicy", putKeyPolicyInput(c.Patch.Target, after))},
	}, "", nil
}

// sameStatement compares two statements as JSON, formatting aside.
func sameStatement(a, b policy.Statement) bool {
	x, err1 := marshal(a)
	y, err2 := marshal(b)
	return err1 == nil && err2 == nil && sameJSON(x, y)
}

// without is the document minus the statement with this Sid.
func without(doc *policy.Document, sid string) *policy.Document {
	rest := &policy.Document{Version: doc.Version, ID: doc.ID}
	for _, s := range doc.Statement {
		if s.Sid != sid {
			rest.Statement = append(rest.Statement, s)
		}
	}
	return rest
}

// writeAttempts bounds the read-merge-write rounds of a key-policy write under concurrent edits.
const writeAttempts = 3

// applyKeyPolicy reads, appends our statement, reads again right before writing (a policy
// changed since the first read is merged again, never overwritten), writes, re-reads and
// compares; when the re-read shows someone else's change, it does it all again. KMS has no
// conditional PutKeyPolicy, so an edit landing between the last read and the write can still
// be lost; the window is one round trip, and the re-read after the write reports it as
// errConcurrent (rolled back). Existing statements are never edited or dropped, and the
// lockout safety check is never bypassed.
func (a *Applier) applyKeyPolicy(ctx context.Context, rec *Record, p finding.Patch) error {
	if p.Statement == nil {
		return fmt.Errorf("change %s: no statement", rec.ID)
	}
	st := *p.Statement
	for range writeAttempts {
		cur, doc, err := a.getKeyPolicy(ctx, rec.Target, rec.Region)
		if err != nil {
			return err
		}
		if have, ok := doc.StatementBySid(st.Sid); ok {
			if !sameStatement(have, st) {
				return fmt.Errorf("the key policy has a different statement %s", st.Sid)
			}
			rec.After = cur // already there (a retry): nothing to write
			return nil
		}
		text, err := marshalPolicy(doc.With(st))
		if err != nil {
			return err
		}
		if len(text) > MaxKeyPolicyBytes {
			return fmt.Errorf("the key policy would be %d bytes, over %d", len(text), MaxKeyPolicyBytes)
		}
		if again, _, err := a.getKeyPolicy(ctx, rec.Target, rec.Region); err != nil {
			return err
		} else if again != cur {
			a.log().Warn("apply: key policy changed since it was read, merging again", "id", rec.ID, "key", rec.Target)
			continue
		}
		rec.Before = cur
		if _, err := a.KMS.PutKeyPolicy(ctx, putKeyPolicyInput(rec.Target, text), regionOpt(rec.Region)); err != nil {
			return fmt.Errorf("PutKeyPolicy %s: %w", rec.Target, err)
		}
		re, _, err := a.getKeyPolicy(ctx, rec.Target, rec.Region)
		if err != nil {
			return err
		}
		if sameJSON(re, text) {
			rec.After = re
			return nil
		}
		a.log().Warn("apply: key policy changed during write, retrying", "id", rec.ID, "key", rec.Target)
	}
	return errConcurrent
}

// revertKeyPolicy removes exactly our statement, and only while it is exactly what kmsfix
// wrote (exact=false otherwise: it is left in place). It reads again right before writing and
// merges from the newer policy when it changed, so an edit made meanwhile (an administrator's
// Deny) survives. When nothing else changed, it writes back the policy exactly as
// GetKeyPolicy returned it before the change.
func (a *Applier) revertKeyPolicy(ctx context.Context, rec *Record) (string, bool, error) {
	sid := rec.Name
	p, err := decodePatch(rec)
	if err != nil || p.Statement == nil {
		return "not reverted: the record carries no statement", false, nil
	}
	for range writeAttempts {
		cur, doc, err := a.keyPolicySettled(ctx, rec, sid)
		if err != nil {
			return "", false, err
		}
		have, ok := doc.StatementBySid(sid)
		if !ok {
			return revertNote(cur, rec.Before, fmt.Sprintf("statement %s was not there in %d reads (never written, or already gone)", sid, a.settings().ConsistentReads)), true, nil
		}
		// Someone rewrote the statement since: it is theirs now, and we never drop theirs.
		if !sameStatement(have, *p.Statement) {
			return "statement " + sid + " was changed by someone else since kmsfix wrote it; left in place", false, nil
		}
		text, err := marshalPolicy(without(doc, sid))
		if err != nil {
			return "", false, err
		}
		if rec.Before != "" && sameJSON(text, rec.Before) {
			text = rec.Before
		}
		if again, _, err := a.getKeyPolicy(ctx, rec.Target, rec.Region); err != nil {
			return "", false, err
		} else if again != cur {
			a.log().Warn("apply: key policy changed since it was read, merging again", "id", rec.ID, "key", rec.Target)
			continue
		}
		if _, err := a.KMS.PutKeyPolicy(ctx, putKeyPolicyInput(rec.Target, text), regionOpt(rec.Region)); err != nil {
			return "", false, fmt.Errorf("PutKeyPolicy %s: %w", rec.Target, err)
		}
		re, redoc, err := a.getKeyPolicy(ctx, rec.Target, rec.Region)
		if err != nil {
			return "", false, err
		}
		if _, ok := redoc.StatementBySid(sid); !ok {
			return revertNote(re, rec.Before, "statement "+sid+" removed"), true, nil
		}
	}
	return "", false, errConcurrent
}

// keyPolicySettled reads the key policy until it has the statement sid, at most
// ConsistentReads times: the KMS API is eventually consistent too ("changes … might not be
// immediately visible", https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html),
// so a rollback just after a PutKeyPolicy must not conclude from one read that the statement
// was never written.
func (a *Applier) keyPolicySettled(ctx context.Context, rec *Record, sid string) (string, *policy.Document, error) {
	s := a.settings()
	delay := s.ReadDelay
	for i := 0; ; i++ {
		cur, doc, err := a.getKeyPolicy(ctx, rec.Target, rec.Region)
		if err != nil {
			return "", nil, err
		}
		if _, ok := doc.StatementBySid(sid); ok || i+1 >= s.ConsistentReads {
			return cur, doc, nil
		}
		if err := a.sleep(ctx, delay); err != nil {
			return "", nil, err
		}
		delay *= 2
	}
}

func revertNote(now, before, what string) string {
	switch {
	case before == "":
		return what
	case now == before:
		return what + "; key policy byte-for-byte as before the change"
	case sameJSON(now, before):
		return what + "; key policy equivalent to before the change (formatting differs)"
	}
	return what + "; the key policy has other changes made since"
}

// ---- IAM inline policy -----------------------------------------------------------------

// iamEntity returns whether an ARN is a user, and its name (paths are not part of names).
func iamEntity(arn string) (user bool, name string) {
	return strings.Contains(arn, ":user/"), arn[strings.LastIndex(arn, "/")+1:]
}

func (a *Applier) inlinePolicies(ctx context.Context, arn string) (map[string]string, error) {
	user, name := iamEntity(arn)
	var names []string
	var marker *string
	for {
		var page []string
		var next *string
		if user {
			out, err := a.IAM.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: &name, Marker: marker})
			if err != nil {
				return nil, fmt.Errorf("ListUserPolicies %s: %w", name, err)
			}
			page, next = out.PolicyNames, out.Marker
			if !out.IsTruncated {
				next = nil
			}
		} else {
			out, err := a.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: &name, Marker: marker})
			if err != nil {
				return nil, fmt.Errorf("ListRolePolicies %s: %w", name, err)
			}
			page, next = out.PolicyNames, out.Marker
			if !out.IsTruncated {
				next = nil
			}
		}
		names = append(names, page...)
		if next == nil {
			break
		}
		marker = next
	}
	docs := make(map[string]string, len(names))
	for _, n := range names {
		doc, found, err := a.inlinePolicy(ctx, arn, n)
		if err != nil {
			return nil, err
		}
		if found {
			docs[n] = doc
		}
	}
	return docs, nil
}

// inlinePolicy reads one inline policy; IAM returns it URL-encoded.
func (a *Applier) inlinePolicy(ctx context.Context, arn, policyName string) (string, bool, error) {
	user, name := iamEntity(arn)
	var enc *string
	var err error
	if user {
		var out *iam.GetUserPolicyOutput
		if out, err = a.IAM.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: &name, PolicyName: &policyName}); err == nil {
			enc = out.PolicyDocument
		}
	} else {
		var out *iam.GetRolePolicyOutput
		if out, err = a.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &name, PolicyName: &policyName}); err == nil {
			enc = out.PolicyDocument
		}
	}
	var nse *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nse):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("get inline policy %s of %s: %w", policyName, name, err)
	}
	doc, derr := url.QueryUnescape(aws.ToString(enc))
	if derr != nil {
		doc = aws.ToString(enc)
	}
	return doc, true, nil
}

func putInlineCall(arn, policyName, doc string) (string, any) {
	user, name := iamEntity(arn)
	if user {
		return "iam:PutUserPolicy", &iam.PutUserPolicyInput{UserName: &name, PolicyName: &policyName, PolicyDocument: &doc}
	}
	return "iam:PutRolePolicy", &iam.PutRolePolicyInput{RoleName: &name, PolicyName: &policyName, PolicyDocument: &doc}
}

func (a *Applier) prepareInline(ctx context.Context, c Candidate, resuming bool) (*prepared, string, error) {
	if c.Patch.Policy == nil {
		return nil, "the patch has no policy document", nil
	}
	if a.IAM == nil {
		return nil, "no IAM client", nil
	}
	docs, err := a.inlinePolicies(ctx, c.Patch.Target)
	if err != nil {
		return nil, "", err
	}
	after, err := marshal(c.Patch.Policy)
	if err != nil {
		return nil, "", err
	}
	if have, ok := docs[c.Patch.Name]; ok {
		if !resuming {
			return nil, "an inline policy named " + c.Patch.Name + " already exists that no active automatic change made; not touching it", nil
		}
		if !sameJSON(have, after) {
			return nil, "the inline policy " + c.Patch.Name + " differs from what kmsfix writes; not touching it", nil
		}
		delete(docs, c.Patch.Name) // our unfinished change's own policy: counted once below
	}
	size := nonSpace(after)
	for _, d := range docs {
		size += nonSpace(d)
	}
	user, name := iamEntity(c.Patch.Target)
	limit, what := MaxRoleInlineChars, "inline policies of role "+name+" (characters)"
	if user {
		limit, what = MaxUserInlineChars, "inline policies of user "+name+" (characters)"
	}
	v, err := a.validate(ctx, after, after, accesstypes.PolicyTypeIdentityPolicy)
	if err != nil {
		return nil, "", err
	}
	v.Size, v.Limit, v.What = size, limit, what
	if why := CheckValidation(v, true); why != "" {
		return nil, why, nil
	}
	op, in := putInlineCall(c.Patch.Target, c.Patch.Name, after)
	return &prepared{rec: Record{After: after}, calls: []string{call(op, in)}}, "", nil
}

// readInline reads an inline policy until settled says the answer is final, at most
// ConsistentReads times with a doubling delay: IAM is eventually consistent, so one read
// just after a write (or a delete) may still show the state before it.
func (a *Applier) readInline(ctx context.Context, arn, name string, settled func(found bool, doc string) bool) (string, bool, error) {
	s := a.settings()
	delay := s.ReadDelay
	var doc string
	var found bool
	for i := range s.ConsistentReads {
		if i > 0 {
			if err := a.sleep(ctx, delay); err != nil {
				return "", false, err
			}
			delay *= 2
		}
		var err error
		doc, found, err = a.inlinePolicy(ctx, arn, name)
		if err != nil {
			return "", false, err
		}
		if settled(found, doc) {
			break
		}
	}
	return doc, found, nil
}

// applyInline puts the inline policy (idempotent per name) and re-reads it until it reads
// back as written.
func (a *Applier) applyInline(ctx context.Context, rec *Record, p finding.Patch) error {
	doc, err := marshal(p.Policy)
	if err != nil {
		return err
	}
	_, in := putInlineCall(rec.Target, rec.Name, doc)
	switch in := in.(type) {
	case *iam.PutUserPolicyInput:
		_, err = a.IAM.PutUserPolicy(ctx, in)
	case *iam.PutRolePolicyInput:
		_, err = a.IAM.PutRolePolicy(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("put inline policy %s on %s: %w", rec.Name, rec.Target, err)
	}
	got, found, err := a.readInline(ctx, rec.Target, rec.Name, func(found bool, got string) bool { return found && sameJSON(got, doc) })
	if err != nil {
		return err
	}
	if !found || !sameJSON(got, doc) {
		return fmt.Errorf("inline policy %s on %s reads back different from what was written", rec.Name, rec.Target)
	}
	rec.After = got
	return nil
}

// revertInline deletes the inline policy only while it is exactly what kmsfix wrote. An
// absence is concluded only when ConsistentReads reads agree (a rollback must not conclude
// "never written" from one stale read and leak the policy), and the deletion is confirmed the
// same way.
func (a *Applier) revertInline(ctx context.Context, rec *Record) (string, bool, error) {
	user, name := iamEntity(rec.Target)
	p, err := decodePatch(rec)
	if err != nil || p.Policy == nil {
		return "not reverted: the record carries no policy", false, nil
	}
	want, err := marshal(p.Policy)
	if err != nil {
		return "", false, err
	}
	n := a.settings().ConsistentReads
	have, found, err := a.readInline(ctx, rec.Target, rec.Name, func(found bool, _ string) bool { return found })
	if err != nil {
		return "", false, err
	}
	if !found {
		return fmt.Sprintf("inline policy %s was not there in %d reads (never written, or already deleted)", rec.Name, n), true, nil
	}
	if !sameJSON(have, want) {
		return "inline policy " + rec.Name + " was changed since kmsfix wrote it; left in place", false, nil
	}
	if user {
		_, err = a.IAM.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: &name, PolicyName: &rec.Name})
	} else {
		_, err = a.IAM.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: &name, PolicyName: &rec.Name})
	}
	var nse *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &nse):
		return "inline policy " + rec.Name + " was already gone", true, nil
	case err != nil:
		return "", false, fmt.Errorf("delete inline policy %s of %s: %w", rec.Name, name, err)
	}
	if _, found, err := a.readInline(ctx, rec.Target, rec.Name, func(found bool, _ string) bool { return !found }); err != nil {
		return "", false, err
	} else if found {
		return "", false, fmt.Errorf("inline policy %s of %s still reads back after %d reads since it was deleted", rec.Name, name, n)
	}
	return "inline policy " + rec.Name + " deleted", true, nil
}

// ---- KMS grant -------------------------------------------------------------------------

func createGrantInput(p finding.Patch) *kms.CreateGrantInput {
	in := &kms.CreateGrantInput{
		KeyId:             aws.String(p.Target),
		GranteePrincipal:  aws.String(p.Grant.Grantee),
		Name:              aws.String(p.Name),
		RetiringPrincipal: aws.String(p.Grant.Retiring),
	}
	for _, o := range p.Grant.Operations {
		in.Operations = append(in.Operations, kmstypes.GrantOperation(o))
	}
	if len(p.Grant.Context) > 0 {
		in.Constraints = &kmstypes.GrantConstraints{EncryptionContextSubset: p.Grant.Context}
	}
	return in
}

func (a *Applier) prepareGrant(c Candidate) (*prepared, string, error) {
	g := c.Patch.Grant
	switch {
	case g == nil:
		return nil, "the patch has no grant", nil
	case a.Grants == nil:
		return nil, "no KMS grant client", nil
	case g.Retiring == "":
		return nil, "no retiring principal", nil
	case len(g.Context) == 0:
		return nil, "a grant without an encryption-context constraint is not applied automatically", nil
	}
	if why := CheckGrantOperations(g.Operations); why != "" {
		return nil, why, nil
	}
	after, _ := marshal(g)
	return &prepared{rec: Record{After: after}, calls: []string{call("kms:CreateGrant", createGrantInput(c.Patch))}}, "", nil
}

// applyGrant creates the grant; its Name makes a retry return the same grant.
func (a *Applier) applyGrant(ctx context.Context, rec *Record, p finding.Patch) error {
	if p.Grant == nil {
		return fmt.Errorf("change %s: no grant", rec.ID)
	}
	// The patch JSON drops the evaluator-only context: constraints carry it.
	if len(p.Grant.Context) == 0 {
		p.Grant.Context = grantContext(p.Grant.Constraints)
	}
	out, err := a.Grants.CreateGrant(ctx, createGrantInput(p), regionOpt(rec.Region))
	if err != nil {
		return fmt.Errorf("CreateGrant on %s: %w", rec.Target, err)
	}
	rec.GrantID = aws.ToString(out.GrantId)
	list, err := a.Grants.ListGrants(ctx, &kms.ListGrantsInput{KeyId: &rec.Target, GrantId: out.GrantId}, regionOpt(rec.Region))
	if err != nil {
		return fmt.Errorf("ListGrants %s: %w", rec.Target, err)
	}
	for _, g := range list.Grants {
		if aws.ToString(g.GrantId) == rec.GrantID && aws.ToString(g.GranteePrincipal) == p.Grant.Grantee {
			rec.After, _ = marshal(g)
			return nil
		}
	}
	return fmt.Errorf("grant %s on %s does not read back", rec.GrantID, rec.Target)
}

func grantContext(c map[string]any) map[string]string {
	sub, _ := c["EncryptionContextSubset"].(map[string]any)
	out := map[string]string{}
	for k, v := range sub {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// sameGrant says whether a listed grant is the one the patch creates: name, grantee,
// retiring principal, operations and encryption-context constraint.
func sameGrant(g kmstypes.GrantListEntry, p finding.Patch) bool {
	if p.Grant == nil || aws.ToString(g.Name) != p.Name || aws.ToString(g.GranteePrincipal) != p.Grant.Grantee ||
		aws.ToString(g.RetiringPrincipal) != p.Grant.Retiring {
		return false
	}
	var ops []string
	for _, o := range g.Operations {
		ops = append(ops, string(o))
	}
	want := slices.Sorted(slices.Values(p.Grant.Operations))
	if slices.Sort(ops); !slices.Equal(ops, want) {
		return false
	}
	ctxWant := p.Grant.Context
	if len(ctxWant) == 0 {
		ctxWant = grantContext(p.Grant.Constraints)
	}
	var have map[string]string
	if g.Constraints != nil {
		have = g.Constraints.EncryptionContextSubset
	}
	if len(have) != len(ctxWant) || (g.Constraints != nil && len(g.Constraints.EncryptionContextEquals) > 0) {
		return false
	}
	for k, v := range ctxWant {
		if have[k] != v {
			return false
		}
	}
	return true
}

// revertGrant retires our grant (by id, or by name when the id was never recorded), and only
// a grant that is exactly the one kmsfix creates.
func (a *Applier) revertGrant(ctx context.Context, rec *Record) (string, bool, error) {
	p, err := decodePatch(rec)
	if err != nil || p.Grant == nil {
		return "not reverted: the record carries no grant", false, nil
	}
	var ours, theirs []string
	var marker *string
	for {
		in := &kms.ListGrantsInput{KeyId: &rec.Target, Marker: marker}
		if rec.GrantID != "" {
			in.GrantId = aws.String(rec.GrantID)
		}
		out, err := a.Grants.ListGrants(ctx, in, regionOpt(rec.Region))
		var nf *kmstypes.NotFoundException
		if errors.As(err, &nf) && rec.GrantID != "" {
			break // KMS answers NotFound for a grant id it does not have
		}
		if err != nil {
			return "", false, fmt.Errorf("ListGrants %s: %w", rec.Target, err)
		}
		for _, g := range out.Grants {
			id := aws.ToString(g.GrantId)
			switch {
			case rec.GrantID != "" && id != rec.GrantID, rec.GrantID == "" && aws.ToString(g.Name) != rec.Name:
			case sameGrant(g, p):
				ours = append(ours, id)
			default:
				theirs = append(theirs, id)
			}
		}
		if !out.Truncated || out.NextMarker == nil {
			break
		}
		marker = out.NextMarker
	}
	for _, id := range ours {
		_, err := a.Grants.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: &rec.Target, GrantId: aws.String(id)}, regionOpt(rec.Region))
		var nf *kmstypes.NotFoundException
		if err != nil && !errors.As(err, &nf) {
			return "", false, fmt.Errorf("RetireGrant %s on %s: %w", id, rec.Target, err)
		}
	}
	switch {
	case len(theirs) > 0:
		return fmt.Sprintf("grant %s does not match what kmsfix created; left in place (retired: %s)", strings.Join(theirs, ", "), orNone(ours)), false, nil
	case len(ours) == 0:
		return "grant " + rec.Name + " was never created or is already gone", true, nil
	}
	return "grant " + strings.Join(ours, ", ") + " retired", true, nil
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
