package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// RoleAPI is the IAM calls of the spoke's role checks; *iam.Client satisfies it.
type RoleAPI interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, optFns ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, optFns ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, optFns ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(ctx context.Context, in *iam.GetPolicyInput, optFns ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, optFns ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

// spokeRole is a role as IAM returns it: its trust and every permission policy, inline and
// attached.
type spokeRole struct {
	ARN      string
	Trust    *policy.Document
	Policies []namedPolicy
}

type namedPolicy struct {
	Name string
	Doc  *policy.Document
}

// roleStatement is one permission statement and where it is (policy name and Sid).
type roleStatement struct {
	Where string
	S     policy.Statement
}

// allows are the role's Allow permission statements, inline and attached (the permission
// checks judge what the role may do).
func (r *spokeRole) allows() []roleStatement {
	var out []roleStatement
	for _, p := range r.Policies {
		for i, s := range p.Doc.Statement {
			if s.Effect == "Allow" {
				out = append(out, roleStatement{p.Name + " " + stmtName(s, i), s})
			}
		}
	}
	return out
}

// actionProblems lists, in statement order, what is wrong with each Allow statement: NotAction
// (it allows every action but those listed), else judge's answer ("" when nothing).
func (r *spokeRole) actionProblems(judge func(st roleStatement) string) []string {
	var wrong []string
	for _, st := range r.allows() {
		p := st.Where + ": uses NotAction"
		if st.S.NotAction.IsZero() {
			p = judge(st)
		}
		if p != "" {
			wrong = append(wrong, p)
		}
	}
	return wrong
}

// readRole reads a role's trust and permission policies; nil without error when it does not
// exist. The calls needed to read it are what the error names.
func readRole(ctx context.Context, api RoleAPI, name string) (*spokeRole, error) {
	out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	var nf *iamtypes.NoSuchEntityException
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil || out.Role == nil {
		return nil, fmt.Errorf("iam:GetRole: %w", errOrEmpty(err))
	}
	r := &spokeRole{ARN: aws.ToString(out.Role.Arn)}
	if r.Trust, err = parsePolicy(aws.ToString(out.Role.AssumeRolePolicyDocument)); err != nil {
		return nil, fmt.Errorf("trust policy: %w", err)
	}
	in := &iam.ListRolePoliciesInput{RoleName: aws.String(name)}
	for {
		page, err := api.ListRolePolicies(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("iam:ListRolePolicies: %w", err)
		}
		for _, pn := range page.PolicyNames {
			p, err := api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn)})
			if err != nil {
				return nil, fmt.Errorf("iam:GetRolePolicy %s: %w", pn, err)
			}
			doc, err := parsePolicy(aws.ToString(p.PolicyDocument))
			if err != nil {
				return nil, fmt.Errorf("inline policy %s: %w", pn, err)
			}
			r.Policies = append(r.Policies, namedPolicy{pn, doc})
		}
		if !page.IsTruncated {
			break
		}
		in.Marker = page.Marker
	}
	ain := &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name)}
	for {
		page, err := api.ListAttachedRolePolicies(ctx, ain)
		if err != nil {
			return nil, fmt.Errorf("iam:ListAttachedRolePolicies: %w", err)
		}
		for _, ap := range page.AttachedPolicies {
			arn := aws.ToString(ap.PolicyArn)
			mp, err := api.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: ap.PolicyArn})
			if err != nil || mp.Policy == nil {
				return nil, fmt.Errorf("iam:GetPolicy %s: %w", arn, errOrEmpty(err))
			}
			v, err := api.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: ap.PolicyArn, VersionId: mp.Policy.DefaultVersionId})
			if err != nil || v.PolicyVersion == nil {
				return nil, fmt.Errorf("iam:GetPolicyVersion %s: %w", arn, errOrEmpty(err))
			}
			doc, err := parsePolicy(aws.ToString(v.PolicyVersion.Document))
			if err != nil {
				return nil, fmt.Errorf("managed policy %s: %w", arn, err)
			}
			r.Policies = append(r.Policies, namedPolicy{arn, doc})
		}
		if !page.IsTruncated {
			break
		}
		ain.Marker = page.Marker
	}
	return r, nil
}

var roleReads = "iam:GetRole, iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, iam:GetPolicy, iam:GetPolicyVersion"

// roleChecks reads a role and runs its two checks (trust, permissions), or fails both the same
// way when the role is missing or unreadable.
func roleChecks(ctx context.Context, api RoleAPI, roleName, trustName, permName, missingFix string,
	trust func(*spokeRole) Check, perms func(*spokeRole) Check) []Check {
	r, err := readRole(ctx, api, roleName)
	if err != nil {
		return []Check{cannotRead(Check{Name: trustName}, "role "+roleName, err, roleReads), skipped(permName, "role not read")}
	}
	if r == nil {
		c := Check{Name: trustName, Status: Fail, Detail: "no role " + roleName, Fix: missingFix}
		return []Check{c, skipped(permName, "no role")}
	}
	return []Check{trust(r), perms(r)}
}

const redeploySpoke = "redeploy the spoke (the StackSet restores it: aws cloudformation update-stack-instances for this account, or redeploy KmsfixSpokes)"

// missingRoleFix: IAM role names are global per account, so the spoke roles are created by the
// account's spoke of the role Region alone (config.Org.RoleRegion, infra NewSpokeStack); the
// doctor reads them through IAM, the same from every Region, and a missing role is that
// Region's stack instance's to create.
func missingRoleFix(o SpokeOptions) string {
	return fmt.Sprintf("the spoke roles are created once per account, by its spoke in the hub's Region %s (in other Regions the spoke only uses them): "+
		"check that stack instance from the hub account (aws cloudformation describe-stack-instance --stack-set-name %s --stack-instance-account %s --stack-instance-region %s --call-as DELEGATED_ADMIN), then ",
		o.Org.RoleRegion(), config.SpokeStackSet, quote.Shell(o.Account), quote.Shell(o.Org.RoleRegion())) + redeploySpoke
}

func checkForwardRole(ctx context.Context, api RoleAPI, o SpokeOptions) []Check {
	return roleChecks(ctx, api, config.ForwardRoleName, NameForwardTrust, NameForwardPermission, missingRoleFix(o),
		func(r *spokeRole) Check { return checkForwardTrust(r) },
		func(r *spokeRole) Check { return checkForwardPermissions(r, o.Org) })
}

// checkForwardTrust: only EventBridge may assume the forwarding role
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-bus-perms.html recommends
// a role for a bus target; its trust names the service).
func checkForwardTrust(r *spokeRole) Check {
	c := Check{Name: NameForwardTrust}
	var wrong []string
	for i, s := range r.Trust.Statement {
		if s.Effect != "Allow" {
			continue
		}
		var bad []string
		for _, p := range principals(s) {
			if p != "Service:events.amazonaws.com" {
				bad = append(bad, p)
			}
		}
		var principalProblem string
		switch {
		case s.NotPrincipal != nil:
			principalProblem = "uses NotPrincipal"
		case len(bad) > 0:
			principalProblem = "trusts " + strings.Join(bad, ", ")
		}
		if p := problems(stmtName(s, i), principalProblem, onlyActions(s, "sts:assumerole")); p != "" {
			wrong = append(wrong, p)
		}
	}
	return verdict(c, wrong, "trusts events.amazonaws.com only",
		redeploySpoke+", or set its trust to events.amazonaws.com alone:\naws iam update-assume-role-policy --role-name "+config.ForwardRoleName+
			" --policy-document "+quote.Shell(policyJSON(map[string]any{"Effect": "Allow", "Principal": map[string]any{"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"})))
}

// checkForwardPermissions: the role may only put events, and only on the hub's bus.
func checkForwardPermissions(r *spokeRole, org *config.Org) Check {
	c := Check{Name: NameForwardPermission}
	var wrong []string
	allowsHub := false
	for _, st := range r.allows() {
		s := st.S
		var res string
		if !s.NotResource.IsZero() {
			res = "uses NotResource"
		} else if extra := without(s.Resource.Items, org.HubBusARN); len(extra) > 0 {
			res = "also on " + strings.Join(extra, ", ")
		}
		p := problems(st.Where, onlyActions(s, "events:putevents"), res)
		if p != "" {
			wrong = append(wrong, p)
		} else if slices.Contains(s.Resource.Items, org.HubBusARN) {
			allowsHub = true
		}
	}
	if !allowsHub && len(wrong) == 0 {
		wrong = append(wrong, "no statement allows events:PutEvents on "+org.HubBusARN+": the rule cannot deliver")
	}
	return verdict(c, wrong, "only events:PutEvents on "+org.HubBusARN, redeploySpoke+
		"; the one statement the spoke gives it: "+compactJSON(map[string]any{"Effect": "Allow", "Action": "events:PutEvents", "Resource": org.HubBusARN}))
}

func checkReaderRole(ctx context.Context, api RoleAPI, o SpokeOptions) []Check {
	return roleChecks(ctx, api, config.ReaderRoleName, NameReaderTrust, NameReaderPermission,
		missingRoleFix(o)+" (deploy the hub first: the trust names its role)",
		func(r *spokeRole) Check { return checkHubOnlyTrust(r, NameReaderTrust, config.ReaderRoleName, o.Org) },
		func(r *spokeRole) Check { return checkReadOnly(r) })
}

// checkHubOnlyTrust: only the hub function's role and the hub's break-glass role (a person
// reverting a change early, docs/apply.md), by their exact ARNs and while they belong to the
// organization, may assume the role: no wildcard, no account root, no other principal
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-roles;
// aws:PrincipalOrgID: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalorgid).
// The hub function's role must be trusted; the break-glass role may be (a spoke deployed
// before it was added does not trust it: the pass says so).
func checkHubOnlyTrust(r *spokeRole, name, roleName string, org *config.Org) Check {
	c := Check{Name: name}
	want, breakGlass := "AWS:"+org.HubRoleARN, "AWS:"+org.BreakGlassRoleARN
	var wrong []string
	hub, glass := false, false
	for i, s := range r.Trust.Statement {
		if s.Effect != "Allow" {
			continue
		}
		var principalProblem string
		got := principals(s)
		switch {
		case s.NotPrincipal != nil:
			principalProblem = "uses NotPrincipal"
		case len(got) == 0 || len(without(without(got, want), breakGlass)) > 0:
			principalProblem = "trusts " + strings.Join(got, ", ") + ", not only " + org.HubRoleARN + " and " + org.BreakGlassRoleARN
			for _, p := range got {
				if strings.HasPrefix(p, "AWS:AROA") {
					principalProblem += " (" + p[len("AWS:"):] + " is a deleted role's unique id: the hub role was recreated, redeploy the spoke)"
				}
			}
		}
		if p := problems(stmtName(s, i), principalProblem, onlyActions(s, "sts:assumerole"),
			requireCondition(s, "aws:PrincipalOrgID", []string{"StringEquals"}, func(v string) bool { return v == org.ID }, org.ID),
		); p != "" {
			wrong = append(wrong, p)
		} else {
			hub = hub || slices.Contains(got, want)
			glass = glass || slices.Contains(got, breakGlass)
		}
	}
	if !hub && len(wrong) == 0 {
		wrong = append(wrong, "no statement lets the hub assume it")
	}
	inOrg := map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": org.ID}}
	trust := []map[string]any{
		{"Effect": "Allow", "Principal": map[string]any{"AWS": org.HubRoleARN}, "Action": "sts:AssumeRole", "Condition": inOrg},
		{"Effect": "Allow", "Principal": map[string]any{"AWS": org.BreakGlassRoleARN}, "Action": "sts:AssumeRole", "Condition": inOrg},
	}
	ok := "only " + org.HubRoleARN + " and " + org.BreakGlassRoleARN + " of " + org.ID
	if !glass {
		ok = "only " + org.HubRoleARN + " of " + org.ID + " (not " + org.BreakGlassRoleARN + ": a person cannot revert a change early; redeploy the spoke)"
	}
	return verdict(c, wrong, ok,
		redeploySpoke+", or:\naws iam update-assume-role-policy --role-name "+roleName+" --policy-document "+quote.Shell(policyJSON(trust...)))
}

// readVerbs begin the names of the actions that only read. An action is judged by its name
// alone; a wildcard is never taken as read-only.
var readVerbs = []string{"Get", "List", "Describe"}

// checkReadOnly: every action the reader role allows only reads.
func checkReadOnly(r *spokeRole) Check {
	n := 0
	wrong := r.actionProblems(func(st roleStatement) string {
		var writes []string
		for _, a := range st.S.Action.Items {
			n++
			if !isReadAction(a) {
				writes = append(writes, a)
			}
		}
		if len(writes) == 0 {
			return ""
		}
		return st.Where + ": allows " + strings.Join(writes, ", ")
	})
	return verdict(Check{Name: NameReaderPermission}, wrong, fmt.Sprintf("%d actions, all Get/List/Describe", n),
		redeploySpoke+"; remove the statements named above (the reader role only reads)")
}

func isReadAction(a string) bool {
	_, verb, ok := strings.Cut(a, ":")
	if !ok || strings.ContainsAny(verb, "*?") {
		return false
	}
	return slices.ContainsFunc(readVerbs, func(p string) bool { return strings.HasPrefix(verb, p) })
}

// levers are the write actions apply mode uses (infra/apply.go applyStatements).
var levers = []string{"iam:putrolepolicy", "iam:deleterolepolicy", "iam:putuserpolicy", "iam:deleteuserpolicy",
	"kms:putkeypolicy", "kms:creategrant", "kms:retiregrant"}

func checkApplyRole(ctx context.Context, api RoleAPI, o SpokeOptions) []Check {
	r, err := readRole(ctx, api, config.ApplyRoleName)
	if err != nil {
		return []Check{cannotRead(Check{Name: NameApplyTrust}, "role "+config.ApplyRoleName, err, roleReads), skipped(NameApplyPermission, "role not read")}
	}
	switch {
	case r == nil && o.Sandbox != nil && *o.Sandbox:
		return []Check{{Name: NameApplyTrust, Status: Fail, Detail: "no role " + config.ApplyRoleName + " in a sandbox account: the hub cannot apply fixes here",
			Fix: "list the account's OU in -c sandboxOus and redeploy KmsfixSpokes (its instances there get SandboxApply=true; the one in the hub's Region " +
				o.Org.RoleRegion() + " creates the role); if it is listed: " + missingRoleFix(o)},
			skipped(NameApplyPermission, "no role")}
	case r == nil:
		return []Check{{Name: NameApplyTrust, Status: Pass, Detail: "no apply role (not a sandbox): the hub can only read here"},
			skipped(NameApplyPermission, "no role")}
	case o.Sandbox != nil && !*o.Sandbox:
		return []Check{{Name: NameApplyTrust, Status: Fail, Detail: config.ApplyRoleName + " exists in an account that is not a sandbox: the hub could change its policies",
			Fix: "move the account out of the sandbox OUs, or remove the OU from -c sandboxOus and redeploy KmsfixSpokes; a role made by hand: aws iam delete-role --role-name " + config.ApplyRoleName},
			checkFenced(r, o)}
	}
	trust := checkHubOnlyTrust(r, NameApplyTrust, config.ApplyRoleName, o.Org)
	if o.Sandbox == nil && trust.Status == Pass {
		trust.Detail += " (present: pass --sandbox=false where the account is not a sandbox to require its absence)"
	}
	return []Check{trust, checkFenced(r, o)}
}

// checkFenced: the apply role's writes are only the levers, each on this account's resources
// and, but for retiring a grant, only on resources tagged kmsfix:auto-fix=enabled.
func checkFenced(r *spokeRole, o SpokeOptions) Check {
	tagKey := "aws:ResourceTag/" + config.AutoFixTagKey
	wrong := r.actionProblems(func(st roleStatement) string {
		s := st.S
		var other []string
		needsTag := false
		for _, a := range actionsOf(s) {
			switch {
			case a == "kms:retiregrant":
			case slices.Contains(levers, a):
				needsTag = true
			case !isReadAction(a):
				other = append(other, a)
			}
		}
		var reasons []string
		if len(other) > 0 {
			reasons = append(reasons, "allows "+strings.Join(other, ", ")+", not a lever")
		}
		if needsTag {
			reasons = append(reasons, requireCondition(s, tagKey, []string{"StringEquals"},
				func(v string) bool { return v == config.AutoFixTagValue }, config.AutoFixTagValue))
		}
		if !s.NotResource.IsZero() {
			reasons = append(reasons, "uses NotResource")
		}
		for _, res := range s.Resource.Items {
			if p := strings.SplitN(res, ":", 6); len(p) < 6 || p[4] != o.Account {
				reasons = append(reasons, "resource "+res+" is not of this account")
			}
		}
		return problems(st.Where, reasons...)
	})
	return verdict(Check{Name: NameApplyPermission}, wrong, "only the levers, on this account's resources tagged "+config.AutoFixTagKey+"="+config.AutoFixTagValue,
		redeploySpoke+"; remove the statements named above")
}

// verdict passes with ok, or fails listing what is wrong with fix.
func verdict(c Check, wrong []string, ok, fix string) Check {
	if len(wrong) == 0 {
		c.Status, c.Detail = Pass, ok
		return c
	}
	c.Status, c.Detail, c.Fix = Fail, strings.Join(wrong, " | "), fix
	return c
}

// without returns the items that are not keep.
func without(items []string, keep string) []string {
	var out []string
	for _, it := range items {
		if it != keep {
			out = append(out, it)
		}
	}
	return out
}
