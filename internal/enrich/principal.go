package enrich

import (
	"context"
	"fmt"
	"github.com/kmsfix/kmsfix/internal/arns"
	"github.com/kmsfix/kmsfix/internal/retry"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

// principalResult is what is known of one role or user: all of its identity policies and its
// permissions boundary, or nothing. A partial list would read as "no policy allows" and
// that would be a guess, so any failure leaves the whole principal unknown.
type principalResult struct {
	p    *world.Principal
	errs []error
}

type managedResult struct {
	name string
	doc  *policy.Document
	err  error
}

func (e *Enricher) principal(ctx context.Context, arn, account string) principalResult {
	if r, ok := e.principals.Get(arn); ok {
		return r
	}
	what := "identity policies of " + arn
	kind, name := iamName(arn)
	pacct := arns.Account(arn)
	var r principalResult
	switch {
	case kind == "":
		r.errs = []error{refused(what, "not an IAM role or user ARN")}
	case account == "":
		// Not cached: the account id may be readable on the next event.
		return principalResult{errs: []error{&lookupError{what: what, reason: "this account's id is unknown, so whether the principal is ours is unknown"}}}
	case pacct != account:
		r.errs = []error{refused(what, fmt.Sprintf("the principal is in account %s and this function reads IAM in %s only", pacct, account))}
	case kind == "role":
		r = e.readPrincipal(ctx, arn, e.role(name), false)
	default:
		r = e.readPrincipal(ctx, arn, e.user(name), true)
	}
	if allPermanent(r.errs) {
		e.principals.Put(arn, r)
	}
	return r
}

// iamEntity is the calls that read one role's, user's or group's identity policies. api is
// the entity as IAM's operation names spell it ("Role" in iam:GetRole, iam:ListRolePolicies).
type iamEntity struct {
	api, name string
	// get reads the entity itself: its ARN, permissions boundary and tags (nil for a group).
	get          func(context.Context) (*string, *types.AttachedPermissionsBoundary, []types.Tag, error)
	listInline   func(context.Context) ([]string, error)
	getInline    func(context.Context, string) (*string, error)
	listAttached func(context.Context) ([]types.AttachedPolicy, error)
}

func (e *Enricher) role(name string) iamEntity {
	return iamEntity{api: "Role", name: name,
		get: func(ctx context.Context) (*string, *types.AttachedPermissionsBoundary, []types.Tag, error) {
			out, err := e.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
			if err != nil {
				return nil, nil, nil, err
			}
			return out.Role.Arn, out.Role.PermissionsBoundary, out.Role.Tags, nil
		},
		listInline: func(ctx context.Context) ([]string, error) {
			return collect(ctx, iam.NewListRolePoliciesPaginator(e.iam, &iam.ListRolePoliciesInput{RoleName: &name}),
				func(o *iam.ListRolePoliciesOutput) []string { return o.PolicyNames })
		},
		getInline: func(ctx context.Context, p string) (*string, error) {
			out, err := e.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &name, PolicyName: &p})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		},
		listAttached: func(ctx context.Context) ([]types.AttachedPolicy, error) {
			return collect(ctx, iam.NewListAttachedRolePoliciesPaginator(e.iam, &iam.ListAttachedRolePoliciesInput{RoleName: &name}),
				func(o *iam.ListAttachedRolePoliciesOutput) []types.AttachedPolicy { return o.AttachedPolicies })
		},
	}
}

func (e *Enricher) user(name string) iamEntity {
	return iamEntity{api: "User", name: name,
		get: func(ctx context.Context) (*string, *types.AttachedPermissionsBoundary, []types.Tag, error) {
			out, err := e.iam.GetUser(ctx, &iam.GetUserInput{UserName: &name})
			if err != nil {
				return nil, nil, nil, err
			}
			return out.User.Arn, out.User.PermissionsBoundary, out.User.Tags, nil
		},
		listInline: func(ctx context.Context) ([]string, error) {
			return collect(ctx, iam.NewListUserPoliciesPaginator(e.iam, &iam.ListUserPoliciesInput{UserName: &name}),
				func(o *iam.ListUserPoliciesOutput) []string { return o.PolicyNames })
		},
		getInline: func(ctx context.Context, p string) (*string, error) {
			out, err := e.iam.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: &name, PolicyName: &p})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		},
		listAttached: func(ctx context.Context) ([]types.AttachedPolicy, error) {
			return collect(ctx, iam.NewListAttachedUserPoliciesPaginator(e.iam, &iam.ListAttachedUserPoliciesInput{UserName: &name}),
				func(o *iam.ListAttachedUserPoliciesOutput) []types.AttachedPolicy { return o.AttachedPolicies })
		},
	}
}

func (e *Enricher) group(name string) iamEntity {
	return iamEntity{api: "Group", name: name,
		listInline: func(ctx context.Context) ([]string, error) {
			return collect(ctx, iam.NewListGroupPoliciesPaginator(e.iam, &iam.ListGroupPoliciesInput{GroupName: &name}),
				func(o *iam.ListGroupPoliciesOutput) []string { return o.PolicyNames })
		},
		getInline: func(ctx context.Context, p string) (*string, error) {
			out, err := e.iam.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: &name, PolicyName: &p})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		},
		listAttached: func(ctx context.Context) ([]types.AttachedPolicy, error) {
			return collect(ctx, iam.NewListAttachedGroupPoliciesPaginator(e.iam, &iam.ListAttachedGroupPoliciesInput{GroupName: &name}),
				func(o *iam.ListAttachedGroupPoliciesOutput) []types.AttachedPolicy { return o.AttachedPolicies })
		},
	}
}

// readPrincipal reads a role's or user's boundary, inline and attached policies
// concurrently, and with groups (a user) those of the groups it is in.
func (e *Enricher) readPrincipal(ctx context.Context, arn string, x iamEntity, groups bool) principalResult {
	var (
		wg       sync.WaitGroup
		errs     errList
		boundary *policy.Document
		tags     map[string]string
		lists    [3][]world.NamedPolicy // inline, attached, groups'
	)
	wg.Go(func() {
		cctx, cancel := e.callCtx(ctx)
		defer cancel()
		got, pb, tt, err := x.get(cctx)
		if err != nil {
			errs.add(classify("iam:Get"+x.api+" "+x.name, err))
			return
		}
		boundary = e.boundary(ctx, arn, aws.ToString(got), pb, &errs)
		// GetRole and GetUser return the entity's tags in the Role/User structure
		// (aws:PrincipalTag/<key>); none means known empty. The Role and User types carry
		// them (https://docs.aws.amazon.com/IAM/latest/APIReference/API_Role.html); that
		// GetRole fills them, rather than only ListRoleTags, is from the CLI's get-role
		// output, unverified against an API page.
		tags = map[string]string{}
		for _, t := range tt {
			tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	})
	wg.Go(func() { lists[0] = e.inlineOf(ctx, x, "", &errs) })
	wg.Go(func() { lists[1] = e.attachedOf(ctx, x, "", &errs) })
	if groups {
		wg.Go(func() { lists[2] = e.userGroups(ctx, x.name, &errs) })
	}
	wg.Wait()
	r := result(&errs, boundary, lists[:]...)
	if r.p != nil {
		r.p.Tags = tags
	}
	return r
}

// userGroups reads the inline and attached policies of every group the user is in. Their
// names are prefixed "group/<name>/" so a finding can say where a statement comes from.
func (e *Enricher) userGroups(ctx context.Context, user string, errs *errList) []world.NamedPolicy {
	cctx, cancel := e.callCtx(ctx)
	names, err := collect(cctx, iam.NewListGroupsForUserPaginator(e.iam, &iam.ListGroupsForUserInput{UserName: &user}),
		func(o *iam.ListGroupsForUserOutput) []string {
			var out []string
			for _, g := range o.Groups {
				out = append(out, aws.ToString(g.GroupName))
			}
			return out
		})
	cancel()
	if err != nil {
		errs.add(classify("iam:ListGroupsForUser "+user, err))
		return nil
	}
	perGroup := make([][]world.NamedPolicy, len(names))
	var wg sync.WaitGroup
	for i, g := range names {
		prefix := "group/" + g + "/"
		wg.Go(func() {
			x := e.group(g)
			perGroup[i] = append(e.inlineOf(ctx, x, prefix, errs), e.attachedOf(ctx, x, prefix, errs)...)
		})
	}
	wg.Wait()
	var out []world.NamedPolicy
	for _, ps := range perGroup {
		out = append(out, ps...)
	}
	return out
}

// inlineOf reads an entity's inline policies, their names after prefix.
func (e *Enricher) inlineOf(ctx context.Context, x iamEntity, prefix string, errs *errList) []world.NamedPolicy {
	return e.inline(ctx, "iam:List"+x.api+"Policies "+x.name, "iam:Get"+x.api+"Policy "+x.name+"/",
		x.listInline, x.getInline, prefix, errs)
}

// attachedOf reads an entity's attached managed policies, their names after prefix.
func (e *Enricher) attachedOf(ctx context.Context, x iamEntity, prefix string, errs *errList) []world.NamedPolicy {
	return e.attached(ctx, "iam:ListAttached"+x.api+"Policies "+x.name, x.listAttached, prefix, errs)
}

// boundary checks that IAM returned the principal we asked for (a role of the same name in
// another account or path is someone else) and reads its permissions boundary.
func (e *Enricher) boundary(ctx context.Context, want, got string, pb *types.AttachedPermissionsBoundary, errs *errList) *policy.Document {
	if got != want {
		errs.add(refused("identity policies of "+want, fmt.Sprintf("IAM returned %s, another principal", got)))
		return nil
	}
	if pb == nil || pb.PermissionsBoundaryArn == nil {
		return nil
	}
	m := e.managedDoc(ctx, aws.ToString(pb.PermissionsBoundaryArn))
	if m.err != nil {
		errs.add(m.err)
		return nil
	}
	return m.doc
}

// inline lists inline policy names, then reads each document concurrently, keeping list order.
func (e *Enricher) inline(ctx context.Context, listWhat, what string, list func(context.Context) ([]string, error),
	get func(context.Context, string) (*string, error), prefix string, errs *errList) []world.NamedPolicy {
	cctx, cancel := e.callCtx(ctx)
	names, err := list(cctx)
	cancel()
	if err != nil {
		errs.add(classify(listWhat, err))
		return nil
	}
	out := make([]world.NamedPolicy, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			cctx, cancel := e.callCtx(ctx)
			defer cancel()
			doc, err := get(cctx, n)
			if err != nil {
				errs.add(classify(what+n, err))
				return
			}
			d, lerr := decodeIAMPolicy(what+n, aws.ToString(doc))
			if lerr != nil {
				errs.add(lerr)
				return
			}
			out[i] = world.NamedPolicy{Name: prefix + n, Document: d}
		})
	}
	wg.Wait()
	return out
}

// attached lists attached managed policies, then reads each default version concurrently.
func (e *Enricher) attached(ctx context.Context, what string, list func(context.Context) ([]types.AttachedPolicy, error),
	prefix string, errs *errList) []world.NamedPolicy {
	cctx, cancel := e.callCtx(ctx)
	aps, err := list(cctx)
	cancel()
	if err != nil {
		errs.add(classify(what, err))
		return nil
	}
	out := make([]world.NamedPolicy, len(aps))
	var wg sync.WaitGroup
	for i, ap := range aps {
		wg.Go(func() {
			m := e.managedDoc(ctx, aws.ToString(ap.PolicyArn))
			if m.err != nil {
				errs.add(m.err)
				return
			}
			out[i] = world.NamedPolicy{Name: prefix + m.name, Document: m.doc}
		})
	}
	wg.Wait()
	return out
}

// managedDoc reads the default version of a managed policy; cached by ARN.
func (e *Enricher) managedDoc(ctx context.Context, arn string) managedResult {
	if r, ok := e.managed.Get(arn); ok {
		return r
	}
	r := e.readManaged(ctx, arn)
	if r.err == nil || retry.IsPermanent(r.err) {
		e.managed.Put(arn, r)
	}
	return r
}

func (e *Enricher) readManaged(ctx context.Context, arn string) managedResult {
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	p, err := e.iam.GetPolicy(cctx, &iam.GetPolicyInput{PolicyArn: &arn})
	if err != nil {
		return managedResult{err: classify("iam:GetPolicy "+arn, err)}
	}
	v, err := e.iam.GetPolicyVersion(cctx, &iam.GetPolicyVersionInput{PolicyArn: &arn, VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		return managedResult{err: classify("iam:GetPolicyVersion "+arn, err)}
	}
	doc, lerr := decodeIAMPolicy("iam:GetPolicyVersion "+arn, aws.ToString(v.PolicyVersion.Document))
	if lerr != nil {
		return managedResult{err: lerr}
	}
	return managedResult{name: aws.ToString(p.Policy.PolicyName), doc: doc}
}

func result(errs *errList, boundary *policy.Document, lists ...[]world.NamedPolicy) principalResult {
	if l := errs.list(); len(l) > 0 {
		return principalResult{errs: l}
	}
	p := &world.Principal{Policies: []world.NamedPolicy{}, PermissionsBoundary: boundary}
	for _, l := range lists {
		p.Policies = append(p.Policies, l...)
	}
	return principalResult{p: p}
}

// pager is the shape of every SDK paginator.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*iam.Options)) (O, error)
}

// collect reads every page and gathers the items.
func collect[O, T any](ctx context.Context, p pager[O], items func(O) []T) ([]T, error) {
	var out []T
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
	}
	return out, nil
}

// iamName returns "role" or "user" and the name (the last path segment) of an IAM ARN.
func iamName(arn string) (kind, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || parts[2] != "iam" {
		return "", ""
	}
	res := parts[5]
	for _, k := range []string{"role", "user"} {
		if rest, ok := strings.CutPrefix(res, k+"/"); ok && rest != "" {
			return k, rest[strings.LastIndex(rest, "/")+1:]
		}
	}
	return "", ""
}
