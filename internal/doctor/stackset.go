package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// StackSetAPI is the CloudFormation calls of the hub's StackSet checks; *cloudformation.Client
// satisfies it.
type StackSetAPI interface {
	DescribeStackSet(ctx context.Context, in *cloudformation.DescribeStackSetInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStackSetOutput, error)
	ListStackInstances(ctx context.Context, in *cloudformation.ListStackInstancesInput, optFns ...func(*cloudformation.Options)) (*cloudformation.ListStackInstancesOutput, error)
}

// maxListedInstances bounds the instances a detail names; the count says how many more.
const maxListedInstances = 20

// CheckStackSet checks the StackSet that deploys the spokes: service-managed and active,
// automatic deployment on, targeting exactly the configured OUs and Regions, and every stack
// instance CURRENT in every configured Region
// (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackSet.html,
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackInstanceSummary.html).
func CheckStackSet(ctx context.Context, api StackSetAPI, o HubOptions) []Check {
	rest := func(why string) []Check {
		return skippedAll(why, NameStackSetAuto, NameStackSetTargets, NameStackSetInstances, NameStackSetRegions)
	}
	c := Check{Name: NameStackSet}
	deploy := "deploy the StackSet from the hub account (docs/org.md, Deploy): make deploy CDK_ARGS=\"-c deployment=org ... KmsfixSpokes\""
	out, err := api.DescribeStackSet(ctx, &cloudformation.DescribeStackSetInput{StackSetName: aws.String(config.SpokeStackSet), CallAs: o.CallAs})
	var nf *cftypes.StackSetNotFoundException
	if errors.As(err, &nf) {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("no StackSet %s (read as %s): no spoke is deployed by it", config.SpokeStackSet, o.CallAs), deploy
		if o.CallAs == cftypes.CallAsDelegatedAdmin {
			c.Fix += "\nfrom the management account, rerun with --call-as SELF"
		}
		return append([]Check{c}, rest("no StackSet")...)
	}
	if err != nil || out.StackSet == nil {
		return append([]Check{cannotRead(c, "StackSet "+config.SpokeStackSet, errOrEmpty(err), "cloudformation:DescribeStackSet")}, rest("StackSet not read")...)
	}
	ss := out.StackSet
	switch {
	case ss.PermissionModel != cftypes.PermissionModelsServiceManaged:
		c.Status = Fail
		c.Detail = fmt.Sprintf("permission model %s: only a service-managed StackSet deploys to OUs and to accounts that join them", ss.PermissionModel)
		c.Fix = "delete it and deploy KmsfixSpokes (it is service-managed): " + deploy
	case ss.Status != cftypes.StackSetStatusActive:
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("status %s", ss.Status), deploy
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%s: SERVICE_MANAGED, ACTIVE", config.SpokeStackSet)
	}
	checks := []Check{c, checkAutoDeployment(ss, o), checkStackSetTargets(ss, o)}
	return append(checks, checkStackInstances(ctx, api, o)...)
}

func errOrEmpty(err error) error {
	if err == nil {
		return errors.New("empty answer")
	}
	return err
}

func checkAutoDeployment(ss *cftypes.StackSet, o HubOptions) Check {
	c := Check{Name: NameStackSetAuto}
	if ss.AutoDeployment != nil && aws.ToBool(ss.AutoDeployment.Enabled) {
		c.Status, c.Detail = Pass, "enabled: accounts joining the target OUs get a spoke"
		return c
	}
	c.Status = Fail
	c.Detail = "disabled: accounts that join the target OUs get no spoke, their denials never reach the hub"
	c.Fix = fmt.Sprintf("aws cloudformation update-stack-set --region %s --stack-set-name %s --call-as %s --use-previous-template "+
		"--capabilities CAPABILITY_NAMED_IAM --auto-deployment Enabled=true,RetainStacksOnAccountRemoval=false\n(or redeploy KmsfixSpokes)",
		quote.Shell(o.Region), config.SpokeStackSet, o.CallAs)
	return c
}

// checkStackSetTargets compares the StackSet's OUs and Regions with the configuration (the
// spoke targets and the sandbox OUs).
func checkStackSetTargets(ss *cftypes.StackSet, o HubOptions) Check {
	c := Check{Name: NameStackSetTargets}
	wantOUs := append(append([]string{}, o.Org.Targets...), o.Org.SandboxOUs...)
	var wrong []string
	if missing, extra := setDiff(wantOUs, ss.OrganizationalUnitIds); len(missing)+len(extra) > 0 {
		wrong = append(wrong, diffText("OUs", missing, extra))
	}
	if missing, extra := setDiff(o.Org.Regions, ss.Regions); len(missing)+len(extra) > 0 {
		wrong = append(wrong, diffText("Regions", missing, extra))
	}
	if len(wrong) == 0 {
		c.Status, c.Detail = Pass, fmt.Sprintf("OUs %s, Regions %s", strings.Join(wantOUs, ","), strings.Join(o.Org.Regions, ","))
		return c
	}
	c.Status, c.Detail = Fail, strings.Join(wrong, "; ")
	c.Fix = "redeploy KmsfixSpokes with the configured -c spokeTargets, -c sandboxOus and -c spokeRegions; or add the missing ones:\n" +
		stackInstancesCommand("create", o, o.Org.Regions)
	return c
}

// checkStackInstances lists the instances: any that is not CURRENT is named with its account,
// Region and reason; a configured Region with no instance at all is missing.
func checkStackInstances(ctx context.Context, api StackSetAPI, o HubOptions) []Check {
	cur, reg := Check{Name: NameStackSetInstances}, Check{Name: NameStackSetRegions}
	var instances []cftypes.StackInstanceSummary
	in := &cloudformation.ListStackInstancesInput{StackSetName: aws.String(config.SpokeStackSet), CallAs: o.CallAs}
	for {
		page, err := api.ListStackInstances(ctx, in)
		if err != nil {
			return []Check{cannotRead(cur, "StackSet's instances", err, "cloudformation:ListStackInstances"), skipped(NameStackSetRegions, "instances not read")}
		}
		instances = append(instances, page.Summaries...)
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	var bad []string
	seen := map[string]bool{}
	// accounts with a spoke, and whether one is in the role Region: IAM role names are global,
	// so only that Region's instance creates an account's roles (infra NewSpokeStack).
	roleRegion := map[string]bool{}
	for _, si := range instances {
		region := aws.ToString(si.Region)
		seen[region] = true
		roleRegion[aws.ToString(si.Account)] = roleRegion[aws.ToString(si.Account)] || region == o.Org.RoleRegion()
		if si.Status == cftypes.StackInstanceStatusCurrent {
			continue
		}
		line := fmt.Sprintf("%s %s %s", aws.ToString(si.Account), region, si.Status)
		if si.StackInstanceStatus != nil && si.StackInstanceStatus.DetailedStatus != "" {
			line += "/" + string(si.StackInstanceStatus.DetailedStatus)
		}
		if r := aws.ToString(si.StatusReason); r != "" {
			line += ": " + r
		}
		bad = append(bad, line)
	}
	switch {
	case len(bad) > 0:
		cur.Status = Fail
		cur.Detail = fmt.Sprintf("%d of %d not CURRENT: %s", len(bad), len(instances), firstFew(bad, "; "))
		cur.Fix = "fix the reason in the named account, then retry the failed instances:\n" + stackInstancesCommand("update", o, o.Org.Regions) +
			"\n(INOPERABLE: delete-stack-instances --retain-stacks, then delete the stack in that account; " +
			"https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_StackInstanceSummary.html)"
	case len(instances) == 0:
		cur.Status, cur.Detail = Fail, "no stack instance: the target OUs hold no account, or the StackSet was never deployed to them"
		cur.Fix = "check the OU ids (aws organizations list-accounts-for-parent --parent-id OU), then redeploy KmsfixSpokes"
	default:
		cur.Status, cur.Detail = Pass, fmt.Sprintf("%d instance(s), all CURRENT", len(instances))
	}

	var missing []string
	for _, r := range o.Org.Regions {
		if !seen[r] {
			missing = append(missing, r)
		}
	}
	var noRoles []string
	if slices.Contains(o.Org.Regions, o.Org.RoleRegion()) && !slices.Contains(missing, o.Org.RoleRegion()) {
		for acct, ok := range roleRegion {
			if !ok {
				noRoles = append(noRoles, acct)
			}
		}
		slices.Sort(noRoles)
	}
	switch {
	case len(missing) > 0:
		reg.Status = Fail
		reg.Detail = "no spoke in " + strings.Join(missing, ", ") + ": denials there are never forwarded"
		if slices.Contains(missing, o.Org.RoleRegion()) {
			reg.Detail += "; " + o.Org.RoleRegion() + " is the hub's Region, whose spokes create the accounts' roles: no other Region's rule can deliver, the hub can read no account"
		}
		reg.Fix = stackInstancesCommand("create", o, missing)
	case len(noRoles) > 0:
		reg.Status = Fail
		reg.Detail = fmt.Sprintf("%d account(s) without a spoke in the hub's Region %s, whose spoke creates an account's roles (their other Regions' rules cannot deliver, the hub cannot read them): %s",
			len(noRoles), o.Org.RoleRegion(), firstFew(noRoles, ", "))
		reg.Fix = "check that the Region is enabled in those accounts (aws account get-region-opt-status --account-id ACCOUNT --region-name " + o.Org.RoleRegion() + "), then:\n" +
			stackInstancesCommand("create", o, []string{o.Org.RoleRegion()})
	default:
		reg.Status, reg.Detail = Pass, "instances in "+strings.Join(o.Org.Regions, ", ")
		if slices.Contains(o.Org.Regions, o.Org.RoleRegion()) {
			reg.Detail += "; every account has one in the hub's Region " + o.Org.RoleRegion() + " (its roles)"
		}
	}
	return []Check{cur, reg}
}

// stackInstancesCommand is the command that creates or updates (verb) the StackSet's instances
// of the target OUs in regions.
func stackInstancesCommand(verb string, o HubOptions, regions []string) string {
	return fmt.Sprintf("aws cloudformation %s-stack-instances --region %s --stack-set-name %s --call-as %s --deployment-targets OrganizationalUnitIds=%s --regions %s",
		verb, quote.Shell(o.Region), config.SpokeStackSet, o.CallAs, quote.Shell(strings.Join(o.Org.Targets, ",")), quote.Shell(strings.Join(regions, " ")))
}

// firstFew joins at most maxListedInstances of items with sep, and says how many more there are.
func firstFew(items []string, sep string) string {
	shown := items[:min(len(items), maxListedInstances)]
	out := strings.Join(shown, sep)
	if more := len(items) - len(shown); more > 0 {
		out += fmt.Sprintf("; and %d more", more)
	}
	return out
}

// setDiff returns what want has that got lacks, and what got has that want lacks.
func setDiff(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}

func diffText(what string, missing, extra []string) string {
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, what+" missing: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, what+" not configured: "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}
