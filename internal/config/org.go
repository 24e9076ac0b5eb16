package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Deployment shapes (docs/org.md).
const (
	DeploySingle = "single"
	DeployOrg    = "org"
)

// The fixed names an organization deployment shares between the hub and its spokes: a spoke's
// roles trust the hub function's role by its exact ARN, and the hub assumes the spoke roles by
// name in each account, so neither can be a generated name.
const (
	HubBusName      = "kmsfix-hub"
	HubRoleName     = "kmsfix-hub-remediator"
	ReaderRoleName  = "kmsfix-reader"
	ApplyRoleName   = "kmsfix-apply"
	ForwardRoleName = "kmsfix-forward"
	// BreakGlassRoleName is the role of the people who revert an automatic change early
	// (`kmsfix revert`, docs/apply.md): in the hub account the spokes' reader and apply roles
	// trust it beside the hub function's role, and the audit key and table admit it.
	BreakGlassRoleName = "kmsfix-break-glass"
	SpokeStackSet      = "kmsfix-spokes"
	// SandboxParameter is the spoke template's parameter that adds the apply role; the
	// StackSet sets it to "true" for the sandbox OUs only.
	SandboxParameter = "SandboxApply"
)

// Org is an organization deployment: one hub and a spoke in every targeted account and Region.
type Org struct {
	ID         string   // o-...
	HubAccount string   // the delegated administrator running the hub
	HubRegion  string   // the hub's home Region
	Targets    []string // OU ids or the root id the StackSet deploys to
	Regions    []string // Regions the StackSet deploys to
	SandboxOUs []string // targets whose spokes also get the apply role
	HubBusARN  string   // derived: arn:PARTITION:events:HubRegion:HubAccount:event-bus/kmsfix-hub
	HubRoleARN string   // derived: the hub function's role
	// BreakGlassRoleARN is derived: the hub account's kmsfix-break-glass role, the one other
	// principal the spokes' roles trust (a person reverting a change early).
	BreakGlassRoleARN string
}

// HubPartition is the partition of the hub ARNs; organizations do not span partitions.
const HubPartition = "aws"

// LoadHub reads only the organization and its hub (orgId, hubAccount, hubRegion) through
// lookup, validated as LoadDeployment does: what a spoke needs to know of its hub (the hub's
// bus and role ARNs), for `kmsfix doctor --spoke` in a member account.
func LoadHub(lookup func(Param) string) (*Org, error) {
	p := parser{get: lookup, label: func(pr Param) string { return pr.Context + " (" + pr.Env + ")" }}
	o := p.hub()
	if err := errors.Join(p.errs...); err != nil {
		return nil, fmt.Errorf("invalid kmsfix parameters:\n%w", err)
	}
	return o, nil
}

// hub reads the organization and its hub, with the derived ARNs.
func (p *parser) hub() *Org {
	o := &Org{
		ID:         p.value("orgId"),
		HubAccount: p.value("hubAccount"),
		HubRegion:  p.value("hubRegion"),
	}
	if !isOrgID(o.ID) {
		p.fail("orgId", "is %q; deployment=org needs the organization id (o-...)", o.ID)
	}
	if !IsAccountID(o.HubAccount) {
		p.fail("hubAccount", "is %q; deployment=org needs the hub's 12-digit account id", o.HubAccount)
	}
	if !isRegion(o.HubRegion) {
		p.fail("hubRegion", "is %q; deployment=org needs the hub's Region (e.g. us-east-1)", o.HubRegion)
	}
	o.HubBusARN = "arn:" + HubPartition + ":events:" + o.HubRegion + ":" + o.HubAccount + ":event-bus/" + HubBusName
	o.HubRoleARN = "arn:" + HubPartition + ":iam::" + o.HubAccount + ":role/" + HubRoleName
	o.BreakGlassRoleARN = "arn:" + HubPartition + ":iam::" + o.HubAccount + ":role/" + BreakGlassRoleName
	return o
}

func (p *parser) org() *Org {
	o := p.hub()
	o.Targets, o.Regions, o.SandboxOUs = p.list("spokeTargets"), p.list("spokeRegions"), p.list("sandboxOus")
	if len(o.Targets) == 0 {
		p.fail("spokeTargets", "is empty; deployment=org needs the OUs (ou-...) or root (r-...) to deploy spokes to")
	}
	for _, t := range o.Targets {
		if !isOUOrRoot(t) {
			p.fail("spokeTargets", "has %q, which is not an OU id (ou-xxxx-xxxxxxxx) or root id (r-xxxx)", t)
		}
	}
	// Two StackInstancesGroup entries reaching one account would both set its stack
	// instance's SandboxApply (one instance per account and Region), and AWS documents no rule
	// for which wins, neither for the StackSet's operations nor for auto-deployment
	// (unverified): the root contains every OU, so it cannot be a target beside sandbox OUs. An
	// OU nested under a target OU cannot be seen here (that takes the Organizations API); the
	// rule is written in docs/org.md and `kmsfix doctor --spoke --sandbox` shows the result.
	if len(o.SandboxOUs) > 0 {
		for _, t := range o.Targets {
			if strings.HasPrefix(t, "r-") {
				p.fail("spokeTargets", "has the root %q beside sandboxOus, which are inside it; list the OUs that are not sandboxes instead of the root", t)
			}
		}
	}
	for _, t := range o.SandboxOUs {
		if !isOUOrRoot(t) || strings.HasPrefix(t, "r-") {
			p.fail("sandboxOus", "has %q, which is not an OU id (ou-xxxx-xxxxxxxx)", t)
		} else if slices.Contains(o.Targets, t) {
			p.fail("sandboxOus", "has %q, which is also in spokeTargets; list each OU once (sandbox OUs get spokes too)", t)
		}
	}
	if len(o.Regions) == 0 {
		p.fail("spokeRegions", "is empty; deployment=org needs the Regions to deploy spokes to")
	}
	for _, r := range o.Regions {
		if !isRegion(r) {
			p.fail("spokeRegions", "has %q, which is not a Region name", r)
		}
	}
	if len(o.Regions) > 0 && isRegion(o.HubRegion) && !slices.Contains(o.Regions, o.HubRegion) {
		p.fail("spokeRegions", "lacks the hub's Region %q; the spokes' IAM roles (global, one per account) are created by the spoke of the hub's Region, so every account needs a spoke there", o.HubRegion)
	}
	return o
}

// RoleRegion is the one Region whose spoke creates an account's spoke roles (kmsfix-reader,
// kmsfix-apply, kmsfix-forward): IAM names are global per account, so a stack instance in
// every Region creating them would fail from the second Region on ("already exists"). It is
// the hub's Region, which the configuration requires among the spoke Regions, so every
// account that gets spokes gets this one too.
func (o *Org) RoleRegion() string { return o.HubRegion }

// RegionOrder is the spoke Regions with the role Region first: the order the StackSet
// deploys them in.
func (o *Org) RegionOrder() []string {
	out := []string{o.RoleRegion()}
	for _, r := range o.Regions {
		if r != o.RoleRegion() {
			out = append(out, r)
		}
	}
	return out
}

// RoleARN is the ARN of the role name (ReaderRoleName, ApplyRoleName, ForwardRoleName: the
// spoke's fixed names, docs/org.md) in account.
func RoleARN(partition, account, name string) string {
	return "arn:" + partition + ":iam::" + account + ":role/" + name
}

// isRegion: lower-case letters, digits and dashes with at least two dashes (us-east-1,
// us-gov-west-1, ap-southeast-5).
func isRegion(s string) bool {
	return len(s) >= 9 && len(s) <= 25 && allOf(s, lowerDigits+"-") && strings.Count(s, "-") >= 2 &&
		!strings.HasPrefix(s, "-") && !strings.HasSuffix(s, "-")
}

// isOUOrRoot: ou-<4-32 of a-z0-9>-<8-32 of a-z0-9> or r-<4-32 of a-z0-9>
// (https://docs.aws.amazon.com/organizations/latest/APIReference/API_OrganizationalUnit.html,
// API_Root.html).
func isOUOrRoot(s string) bool {
	if rest, ok := strings.CutPrefix(s, "r-"); ok {
		return len(rest) >= 4 && len(rest) <= 32 && allOf(rest, lowerDigits)
	}
	rest, ok := strings.CutPrefix(s, "ou-")
	if !ok {
		return false
	}
	root, ou, ok := strings.Cut(rest, "-")
	return ok && len(root) >= 4 && len(root) <= 32 && allOf(root, lowerDigits) &&
		len(ou) >= 8 && len(ou) <= 32 && allOf(ou, lowerDigits)
}

// IsRoleARN says whether s is one exact IAM role ARN (no wildcard): what `kmsfix revert
// --role` accepts.
func IsRoleARN(s string) bool {
	_, ok := roleAccount(s)
	return ok
}
