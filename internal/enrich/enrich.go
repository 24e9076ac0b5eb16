// Package enrich builds the world (docs/contract.md section 2) for one denial from live AWS: the
// key from KMS, the principal's identity policies from IAM, the account from STS. Independent
// calls run concurrently, results are cached per container for a short time, every call has
// a deadline inside the invocation's, and whatever cannot be read is left unknown and listed
// in World.Unreadable rather than guessed.
package enrich

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/arns"
	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/retry"
	"github.com/kmsfix/kmsfix/internal/world"
)

// Options tune the enricher; zero values take the defaults.
type Options struct {
	// TTL is how long a lookup is reused within a container (default 1m).
	TTL time.Duration
	// CallTimeout bounds each AWS call (default 3s).
	CallTimeout time.Duration
	// Reserve is the time kept back from the invocation's deadline for what follows
	// enrichment: validation, notification, logging (default 1s, at most half of what is left).
	Reserve time.Duration
	// Now is the clock of the caches (default time.Now).
	Now func() time.Time
	// OtherAccount, when set (the hub, docs/org.md), returns the enricher of another account
	// of the organization, reading with that account's reader role: a key or a principal of
	// that account is then read there (key policy, identity policies), so both halves of a
	// cross-account denial are known, whichever account's copy of the record came in. An
	// error (the role cannot be assumed: no spoke, an account outside the organization)
	// leaves that part unknown, as without OtherAccount.
	OtherAccount func(ctx context.Context, account string) (*Enricher, error)
}

// Enricher reads the world from AWS. It is safe for concurrent use and meant to live as long
// as the container.
type Enricher struct {
	kms  KMSAPI
	iam  IAMAPI
	sts  STSAPI
	opts Options

	acctMu  sync.Mutex
	account string

	keys       *Cache[keyResult]
	grants     *Cache[grantsResult]
	principals *Cache[principalResult]
	managed    *Cache[managedResult]
}

// New returns an Enricher over the given clients.
func New(k KMSAPI, i IAMAPI, s STSAPI, opts Options) *Enricher {
	if opts.TTL <= 0 {
		opts.TTL = time.Minute
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 3 * time.Second
	}
	if opts.Reserve <= 0 {
		opts.Reserve = time.Second
	}
	return &Enricher{
		kms: k, iam: i, sts: s, opts: opts,
		keys:       NewCache[keyResult](opts.TTL, opts.Now),
		grants:     NewCache[grantsResult](opts.TTL, opts.Now),
		principals: NewCache[principalResult](opts.TTL, opts.Now),
		managed:    NewCache[managedResult](opts.TTL, opts.Now),
	}
}

// World builds what AWS says about the denial's key and principal. It never fails: a lookup
// that is denied, times out or errors leaves its part unknown and is named in Unreadable.
func (e *Enricher) World(ctx context.Context, d *cloudtrail.Denial) *world.World {
	ctx, cancel := e.budget(ctx)
	defer cancel()

	w := &world.World{}
	var errs errList
	account, aerr := e.callerAccount(ctx)
	errs.add(aerr)

	var (
		wg      sync.WaitGroup
		key     keyResult
		grants  grantsResult
		princ   principalResult
		keyARN  = d.KeyARN
		princAR = d.Identity.PrincipalARN
	)
	if keyARN != "" {
		wg.Go(func() { key = e.keyOf(ctx, keyARN, account) })
		if princAR != "" {
			wg.Go(func() { grants = e.grantsFor(ctx, keyARN, princAR) })
		}
	}
	if princAR != "" {
		wg.Go(func() { princ = e.principalOf(ctx, princAR, account) })
	}
	wg.Wait()

	switch {
	case key.missing:
		w.MissingKeys = []string{keyARN}
	case key.key != nil:
		k := *key.key // the cached value is shared: copy before adding this principal's grants
		if grants.err == nil && princAR != "" {
			k.Grants, k.GrantsKnown = grants.grants, true
		}
		w.Keys = map[string]*world.Key{keyARN: &k}
	}
	if !key.missing {
		errs.add(key.errs...)
		errs.add(grants.err)
	}
	if princ.p != nil {
		w.Principals = map[string]*world.Principal{princAR: princ.p}
	}
	errs.add(princ.errs...)
	w.Unreadable = errs.strings()
	return w
}

// budget ends enrichment early enough to leave Reserve for the rest of the invocation.
func (e *Enricher) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(e.opts.Reserve, time.Until(dl)/2)
	return context.WithDeadline(ctx, dl.Add(-reserve))
}

func (e *Enricher) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opts.CallTimeout)
}

// callerAccount asks STS once per container; a failure is retried on the next event.
func (e *Enricher) callerAccount(ctx context.Context) (string, error) {
	e.acctMu.Lock()
	defer e.acctMu.Unlock()
	if e.account != "" {
		return e.account, nil
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	out, err := e.sts.GetCallerIdentity(cctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", classify("sts:GetCallerIdentity", err)
	}
	e.account = aws.ToString(out.Account)
	return e.account, nil
}

// principalOf reads the principal here, or, for a principal of another account when
// Options.OtherAccount is set, through that account's enricher.
func (e *Enricher) principalOf(ctx context.Context, arn, account string) principalResult {
	owner := arns.Account(arn)
	if e.opts.OtherAccount == nil || account == "" || owner == "" || owner == account || !strings.HasPrefix(arn, "arn:") {
		return e.principal(ctx, arn, account)
	}
	oe, err := e.opts.OtherAccount(ctx, owner)
	if err != nil {
		return principalResult{errs: []error{&lookupError{what: "identity policies of " + arn,
			reason: "the principal is in account " + owner + " and its reader role could not be assumed: " + err.Error()}}}
	}
	return oe.principal(ctx, arn, owner)
}

// keyOf reads the key here, or, for a key of another account when Options.OtherAccount is
// set, through the owner account's enricher, which may read its policy.
func (e *Enricher) keyOf(ctx context.Context, arn, account string) keyResult {
	owner := arns.Account(arn)
	if e.opts.OtherAccount == nil || account == "" || owner == "" || owner == account {
		return e.key(ctx, arn, account)
	}
	oe, err := e.opts.OtherAccount(ctx, owner)
	if err != nil {
		r := e.key(ctx, arn, account) // what this account can read (DescribeKey)
		r.errs = slices.Clone(r.errs) // the cached result is shared
		for i, e := range r.errs {
			var le *lookupError
			if errors.As(e, &le) && le.what == "key policy of "+arn {
				r.errs[i] = &lookupError{what: le.what, reason: "the key is in account " + owner +
					" and its reader role could not be assumed: " + err.Error()}
			}
		}
		return r
	}
	return oe.key(ctx, arn, owner)
}

// keyResult is what is known of one key; it is cached only when every failure is stable.
type keyResult struct {
	key     *world.Key
	missing bool
	errs    []error
}

func (e *Enricher) key(ctx context.Context, arn, account string) keyResult {
	if r, ok := e.keys.Get(arn); ok {
		return r
	}
	keyAccount, region := arns.Account(arn), arns.Region(arn)
	inRegion := func(o *kms.Options) {
		if region != "" {
			o.Region = region
		}
	}
	same := account != "" && keyAccount == account

	var (
		wg                     sync.WaitGroup
		desc                   *kms.DescribeKeyOutput
		pol                    *kms.GetKeyPolicyOutput
		aliases                []string
		tags                   map[string]string
		descErr, polErr, alErr error
		tagErr                 error // leaves the tags unknown
	)
	wg.Go(func() {
		cctx, cancel := e.callCtx(ctx)
		defer cancel()
		desc, descErr = e.kms.DescribeKey(cctx, &kms.DescribeKeyInput{KeyId: &arn}, inRegion)
	})
	if same {
		wg.Go(func() {
			cctx, cancel := e.callCtx(ctx)
			defer cancel()
			pol, polErr = e.kms.GetKeyPolicy(cctx, &kms.GetKeyPolicyInput{KeyId: &arn, PolicyName: aws.String("default")}, inRegion)
		})
		wg.Go(func() {
			cctx, cancel := e.callCtx(ctx)
			defer cancel()
			p := kms.NewListAliasesPaginator(e.kms, &kms.ListAliasesInput{KeyId: &arn})
			for p.HasMorePages() {
				out, err := p.NextPage(cctx, inRegion)
				if err != nil {
					alErr = err
					return
				}
				for _, a := range out.Aliases {
					aliases = append(aliases, aws.ToString(a.AliasName))
				}
			}
		})
		// The key's tags (aws:ResourceTag/<key>); ListResourceTags works in the key's own
		// account only. https://docs.aws.amazon.com/kms/latest/APIReference/API_ListResourceTags.html
		wg.Go(func() {
			cctx, cancel := e.callCtx(ctx)
			defer cancel()
			tags = map[string]string{}
			p := kms.NewListResourceTagsPaginator(e.kms, &kms.ListResourceTagsInput{KeyId: &arn})
			for p.HasMorePages() {
				out, err := p.NextPage(cctx, inRegion)
				if err != nil {
					tags, tagErr = nil, err
					return
				}
				for _, t := range out.Tags {
					tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
				}
			}
		})
	}
	wg.Wait()

	var r keyResult
	if descErr != nil && isNotFound(descErr) {
		r.missing = true
		e.keys.Put(arn, r)
		return r
	}
	k := &world.Key{}
	known := false
	if descErr == nil && desc.KeyMetadata != nil {
		m := desc.KeyMetadata
		k.Manager, k.State = string(m.KeyManager), string(m.KeyState)
		k.KeySpec, k.KeyUsage, k.Origin = string(m.KeySpec), string(m.KeyUsage), string(m.Origin)
		k.MultiRegion = aws.Bool(aws.ToBool(m.MultiRegion))
		known = true
	} else if descErr != nil {
		r.errs = append(r.errs, classify("kms:DescribeKey "+arn, descErr))
	}
	switch {
	case same:
		if polErr != nil {
			r.errs = append(r.errs, classify("kms:GetKeyPolicy "+arn, polErr))
		} else if doc, err := policy.Parse([]byte(aws.ToString(pol.Policy))); err != nil {
			r.errs = append(r.errs, refused("kms:GetKeyPolicy "+arn, "the policy does not parse: "+err.Error()))
		} else {
			k.Policy, known = doc, true
		}
		if alErr != nil {
			r.errs = append(r.errs, classify("kms:ListAliases "+arn, alErr))
		} else {
			slices.Sort(aliases)
			k.Aliases = append([]string{}, aliases...) // read: empty means no aliases
		}
		// Unread tags stay unknown (nil) without being listed as unreadable: they matter only
		// to a condition on aws:ResourceTag, which is then undetermined and names the key,
		// whereas an unreadable entry would leave every finding on this key unverified.
		if tagErr == nil {
			k.Tags = tags
		}
	case account == "":
		r.errs = append(r.errs, &lookupError{what: "key policy of " + arn, reason: "this account's id is unknown, so whether the key is ours is unknown"})
	default:
		r.errs = append(r.errs, refused("key policy of "+arn,
			fmt.Sprintf("the key is in account %s and only its owner can read the policy", keyAccount)))
	}
	if known {
		r.key = k
	}
	if allPermanent(r.errs) {
		e.keys.Put(arn, r)
	}
	return r
}

type grantsResult struct {
	grants []world.Grant
	err    error
}

// grantsFor lists the key's grants whose grantee is the principal.
func (e *Enricher) grantsFor(ctx context.Context, keyARN, principal string) grantsResult {
	ck := keyARN + "|" + principal
	if r, ok := e.grants.Get(ck); ok {
		return r
	}
	region := arns.Region(keyARN)
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	r := grantsResult{grants: []world.Grant{}}
	p := kms.NewListGrantsPaginator(e.kms, &kms.ListGrantsInput{KeyId: &keyARN, GranteePrincipal: &principal})
	for p.HasMorePages() {
		out, err := p.NextPage(cctx, func(o *kms.Options) {
			if region != "" {
				o.Region = region
			}
		})
		if err != nil {
			r = grantsResult{err: classify("kms:ListGrants "+keyARN, err)}
			break
		}
		for _, g := range out.Grants {
			wg := world.Grant{ID: aws.ToString(g.GrantId), Name: aws.ToString(g.Name), Grantee: aws.ToString(g.GranteePrincipal)}
			for _, op := range g.Operations {
				wg.Operations = append(wg.Operations, string(op))
			}
			if c := g.Constraints; c != nil && (len(c.EncryptionContextEquals) > 0 || len(c.EncryptionContextSubset) > 0) {
				wg.Constraints = &world.GrantConstraints{EncryptionContextEquals: c.EncryptionContextEquals, EncryptionContextSubset: c.EncryptionContextSubset}
			}
			r.grants = append(r.grants, wg)
		}
	}
	if r.err == nil || retry.IsPermanent(r.err) {
		e.grants.Put(ck, r)
	}
	return r
}

// decodeIAMPolicy reads a policy document as IAM returns it (URL-encoded JSON).
func decodeIAMPolicy(what, s string) (*policy.Document, error) {
	raw, err := url.QueryUnescape(s)
	if err != nil {
		return nil, refused(what, "the document is not URL-encoded: "+err.Error())
	}
	doc, err := policy.Parse([]byte(raw))
	if err != nil {
		return nil, refused(what, "the document does not parse: "+err.Error())
	}
	return doc, nil
}

// errList collects lookup failures from concurrent readers.
type errList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errList) add(errs ...error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range errs {
		if e != nil {
			l.errs = append(l.errs, e)
		}
	}
}

func (l *errList) list() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

func (l *errList) strings() []string {
	var out []string
	for _, e := range l.list() {
		out = append(out, e.Error())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func allPermanent(errs []error) bool {
	for _, e := range errs {
		if !retry.IsPermanent(e) {
			return false
		}
	}
	return true
}
