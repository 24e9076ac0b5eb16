package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/doctor"
)

// wantsOrg says `doctor` was asked to check an organization deployment: "hub" or "spoke".
func wantsOrg(args []string) string {
	for _, a := range args {
		switch a {
		case "--hub", "-hub":
			return "hub"
		case "--spoke", "-spoke":
			return "spoke"
		}
	}
	return ""
}

// optionalBool is a flag that is true, false, or not given.
type optionalBool struct{ v *bool }

func (b *optionalBool) String() string {
	if b == nil || b.v == nil {
		return ""
	}
	return strconv.FormatBool(*b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	b.v = &v
	return nil
}

// orgFlags are the organization parameters, by the names the CDK app takes them; each
// defaults to the same environment variable the app reads (config.Params).
type orgFlags map[string]*string

func registerOrgFlags(fs *flag.FlagSet, names ...string) orgFlags {
	flagName := map[string]string{"orgId": "org-id", "hubAccount": "hub-account", "hubRegion": "hub-region",
		"spokeTargets": "spoke-targets", "spokeRegions": "spoke-regions", "sandboxOus": "sandbox-ous"}
	f := orgFlags{}
	for _, n := range names {
		p := config.ParamByContext(n)
		f[n] = fs.String(flagName[n], os.Getenv(p.Env), p.Help+" (default: $"+p.Env+")")
	}
	return f
}

func (f orgFlags) lookup(p config.Param) string {
	if p.Context == "deployment" {
		return config.DeployOrg
	}
	if v, ok := f[p.Context]; ok {
		return *v
	}
	return "" // every other parameter: its default
}

// runDoctorOrg checks a hub (`--hub`, in the hub account and Region) or a spoke (`--spoke`, in
// a member account and Region): exit 0 every check passed (warnings allowed), 1 a check failed
// or AWS could not be reached, 2 usage or invalid parameters.
func runDoctorOrg(which string, args []string, stdout, stderr io.Writer) int {
	var a awsFlags
	fs := a.flagSet("doctor --"+which, stderr)
	fs.Bool(which, true, "check the "+which+" of an organization deployment (docs/org.md)")
	var org orgFlags
	var stack, callAs, rule *string
	var sandbox optionalBool
	if which == "hub" {
		org = registerOrgFlags(fs, "orgId", "hubAccount", "hubRegion", "spokeTargets", "spokeRegions", "sandboxOus")
		stack = fs.String("stack", envOr("KMSFIX_STACK_NAME", "Kmsfix")+"Hub", "the hub stack's name (its rule is <stack>-KmsDenialRule...)")
		callAs = fs.String("call-as", string(cftypes.CallAsDelegatedAdmin), "read the StackSet as DELEGATED_ADMIN (the hub account) or SELF (the management account)")
	} else {
		org = registerOrgFlags(fs, "orgId", "hubAccount", "hubRegion")
		rule = fs.String("rule", "", "the spoke rule's name (default: the default bus's rule targeting the hub bus)")
		fs.Var(&sandbox, "sandbox", "true: this account is in a sandbox OU (the apply role must exist); false: it is not (the apply role must not); default: not known")
	}
	fs.Usage = func() {
		if which == "hub" {
			fmt.Fprintln(stderr, "usage: kmsfix doctor --hub --org-id O --hub-account A --hub-region R --spoke-targets OU,... --spoke-regions R,... [--sandbox-ous OU,...] [--call-as SELF] [--profile P] [--region R] [--output text|json]")
		} else {
			fmt.Fprintln(stderr, "usage: kmsfix doctor --spoke --org-id O --hub-account A --hub-region R [--sandbox true|false] [--rule NAME] [--profile P] [--region R] [--output text|json]")
		}
		fmt.Fprintln(stderr, "exit: 0 every check passed, 1 a check failed (each with its fix) or AWS could not be reached, 2 usage or invalid parameters")
		fs.PrintDefaults()
	}
	usage := failer(stderr, "kmsfix doctor --"+which, 2)
	fail := failer(stderr, "kmsfix doctor --"+which, 1)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q", fs.Arg(0))
	}
	format, err := a.format()
	if err != nil {
		return usage("%v", err)
	}
	var o *config.Org
	if which == "hub" {
		d, err := config.LoadDeployment(org.lookup)
		if err != nil {
			return usage("%v", err)
		}
		o = d.Org
		if !slices.Contains([]string{string(cftypes.CallAsSelf), string(cftypes.CallAsDelegatedAdmin)}, *callAs) {
			return usage("--call-as must be SELF or DELEGATED_ADMIN, not %q", *callAs)
		}
	} else if o, err = config.LoadHub(org.lookup); err != nil {
		return usage("%v", err)
	}

	ctx, cancel := commandContext(5 * time.Minute)
	defer cancel()
	cfg, err := a.config(ctx)
	if err != nil {
		return fail("%v", err)
	}
	account, err := callerAccount(ctx, cfg)
	if err != nil {
		return fail("%v", err)
	}
	var checks []doctor.Check
	if which == "hub" {
		if account != o.HubAccount || cfg.Region != o.HubRegion {
			fmt.Fprintf(stderr, "kmsfix doctor --hub: note: running in %s %s, the hub is %s %s\n", account, cfg.Region, o.HubAccount, o.HubRegion)
		}
		checks = doctor.RunHub(ctx, doctor.HubClients{
			EventBridge:    eventbridge.NewFromConfig(cfg),
			Lambda:         lambda.NewFromConfig(cfg),
			CloudFormation: cloudformation.NewFromConfig(cfg),
		}, doctor.HubOptions{Region: cfg.Region, Org: o, Stack: *stack, CallAs: cftypes.CallAs(*callAs)})
	} else {
		checks = doctor.RunSpoke(ctx, doctor.SpokeClients{
			EventBridge: eventbridge.NewFromConfig(cfg),
			IAM:         iam.NewFromConfig(cfg),
		}, doctor.SpokeOptions{Region: cfg.Region, Account: account, Org: o, Rule: *rule, Sandbox: sandbox.v})
	}
	if format == "json" {
		err = doctor.WriteJSON(stdout, checks)
	} else {
		fmt.Fprintf(stdout, "kmsfix doctor --%s: account %s, Region %s\n", which, account, cfg.Region)
		err = doctor.WriteTable(stdout, checks)
	}
	if err != nil {
		return fail("%v", err)
	}
	if doctor.Failed(checks) {
		return 1
	}
	return 0
}
