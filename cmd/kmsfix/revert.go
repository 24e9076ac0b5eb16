package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kmsfix/kmsfix/internal/apply"
	"github.com/kmsfix/kmsfix/internal/config"
	"github.com/kmsfix/kmsfix/internal/hub"
	"github.com/kmsfix/kmsfix/internal/quote"
)

// auditOptions are the flags revert and applied share: where the audit table is and the key
// that seals its records.
type auditOptions struct {
	table, region string
	auditKey      string // --audit-key
	hub           bool   // --hub: the organization hub's table (docs/org.md)
	role          string // --role: assumed with the caller's credentials before anything else
}

// register adds the shared flags to fs.
func (o *auditOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.table, "table", os.Getenv("KMSFIX_TABLE_NAME"), "the remediator's DynamoDB table (default $KMSFIX_TABLE_NAME)")
	fs.StringVar(&o.region, "region", "", "AWS Region of the table (default from the AWS configuration)")
	fs.StringVar(&o.auditKey, "audit-key", os.Getenv("KMSFIX_AUDIT_KEY_ARN"),
		"the HMAC KMS key that seals the audit records (default $KMSFIX_AUDIT_KEY_ARN); records are checked with it and never trusted without it")
	fs.BoolVar(&o.hub, "hub", os.Getenv("KMSFIX_HUB_ORG_ID") != "",
		"the table is the organization hub's (default: $KMSFIX_HUB_ORG_ID is set): a change is reverted in its own account, reading through its kmsfix-reader role and writing through its kmsfix-apply role, assumed with your credentials (or --role's)")
	fs.StringVar(&o.role, "role", "",
		"an IAM role ARN to assume with your credentials first, and act as: the break-glass role "+config.BreakGlassRoleName+
			" (in the hub, the one person's role the spokes' roles trust; the revert command in messages names it)")
}

func runRevert(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("revert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o auditOptions
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kmsfix revert ID [--table T] [--region R] [--hub] [--role BREAK_GLASS_ROLE_ARN] [--audit-key KEY_ARN]")
		fmt.Fprintln(stderr, "Removes exactly what automatic change ID added (the inline policy, the key-policy statement by Sid, or the grant), only while it is what kmsfix wrote, and records it in the audit table; anything changed since is left and reported.")
		fs.PrintDefaults()
	}
	// The id comes first in the documented command; flags may follow it.
	var id string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 || id == "" {
		fs.Usage()
		return 2
	}
	if o.table == "" {
		fmt.Fprintln(stderr, "kmsfix revert: no table: pass --table or set KMSFIX_TABLE_NAME")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := auditApplier(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix revert: %v\n", err)
		return 1
	}
	before, err := a.Store.Get(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix revert: %v\n", err)
		return 1
	}
	if before != nil && apply.Closed(before.Status) {
		fmt.Fprintf(stdout, "change %s is already %s (%s)\n", quote.Text(id), quote.Text(before.Status), quote.Text(before.EndedAt))
		return 0
	}
	rec, err := a.Revert(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix revert: %v\n", err)
		return 1
	}
	t := quote.Text // the record's fields are stored text: never raw to the terminal
	fmt.Fprintf(stdout, "change %s %s: %s %s on %s: %s\n", t(id), t(rec.Status), t(rec.Lever), t(rec.Name), t(rec.Target), t(rec.Note))
	return 0
}

func runApplied(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("applied", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o auditOptions
	o.register(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per change")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.table == "" {
		fmt.Fprintln(stderr, "kmsfix applied: no table: pass --table or set KMSFIX_TABLE_NAME")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := auditApplier(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix applied: %v\n", err)
		return 1
	}
	ids, err := a.Store.Active(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "kmsfix applied: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tSTATUS\tLEVER\tTARGET\tNAME\tEXPIRES\tERROR")
	}
	// In the hub the target's ARN names the account; the role that wrote is in --json.
	ok := true
	for _, id := range ids {
		rec, err := a.Store.Get(ctx, id)
		if errors.Is(err, apply.ErrTampered) {
			// Listed, never trusted: a person must look at it.
			ok = false
			fmt.Fprintf(stderr, "kmsfix applied: %v\n", err)
			if *asJSON {
				b, _ := json.Marshal(map[string]any{"id": id, "status": "integrity-check-failed", "error": err.Error()})
				fmt.Fprintln(stdout, string(b))
			} else {
				fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t%s\n", quote.Text(id), "integrity-check-failed", "not written by kmsfix, or changed since")
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "kmsfix applied: %v\n", err)
			return 1
		}
		if rec == nil || apply.Closed(rec.Status) {
			continue
		}
		if *asJSON {
			b, _ := json.Marshal(map[string]any{"id": rec.ID, "status": rec.Status, "lever": rec.Lever,
				"account": rec.Account, "role": rec.Role, "target": rec.Target, "name": rec.Name, "event_id": rec.EventID,
				"applied_at": rec.AppliedAt, "expires_at": rec.ExpiresAt, "error": rec.Error, "note": rec.Note})
			fmt.Fprintln(stdout, string(b))
			continue
		}
		why := rec.Error
		if rec.Status == apply.StatusNeedsReview {
			why = rec.Note
		}
		t := quote.Text
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t(rec.ID), t(rec.Status), t(rec.Lever), t(rec.Target), t(rec.Name), t(rec.ExpiresAt), t(why))
	}
	return boolExit(tw.Flush() == nil && ok)
}

func boolExit(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

// auditApplier builds an applier that can only revert: the audit store and the clients the
// levers' reverts use (AWS_ENDPOINT_URL_<SERVICE> redirects them, as tests do).
func auditApplier(ctx context.Context, o auditOptions) (*apply.Applier, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if o.region != "" {
		opts = append(opts, awsconfig.WithRegion(o.region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if o.role != "" {
		if cfg, err = assumeFirst(ctx, cfg, o.role); err != nil {
			return nil, err
		}
	}
	kc := kms.NewFromConfig(cfg)
	if o.auditKey == "" {
		return nil, fmt.Errorf("no audit key: pass --audit-key or set KMSFIX_AUDIT_KEY_ARN (audit records are read only when their integrity code checks out)")
	}
	a := &apply.Applier{
		Settings: apply.Settings{Table: o.table, Region: cfg.Region, Hub: o.hub},
		Store: &apply.Store{DB: dynamodb.NewFromConfig(cfg), Table: o.table, Retention: apply.DefaultRetention,
			Sealer: apply.KMSSealer{API: kc, KeyID: o.auditKey}},
		KMS:    kc,
		Grants: kc,
		IAM:    iam.NewFromConfig(cfg),
	}
	if o.hub {
		// Each change in its own account, through that account's roles (the record's account,
		// sealed): the caller's credentials only assume them.
		a.KMS, a.Grants, a.IAM = nil, nil, nil
		a.Accounts = &hub.Accounts{Base: cfg, STS: sts.NewFromConfig(cfg), Partition: config.HubPartition}
	}
	return a, nil
}

// revertSession names the break-glass session in CloudTrail; the AssumeRole event also records
// who assumed it (the caller's own identity).
const revertSession = "kmsfix-revert"

// assumeFirst replaces cfg's credentials with the role's, assumed with them now, so that a
// refusal names the role before anything is read (in the hub every later AssumeRole, of the
// spokes' roles, is then made by this role: role chaining, sessions of at most one hour,
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html).
func assumeFirst(ctx context.Context, cfg aws.Config, role string) (aws.Config, error) {
	if !config.IsRoleARN(role) {
		return cfg, fmt.Errorf("--role %s is not an IAM role ARN (arn:aws:iam::123456789012:role/%s)", quote.Text(role), config.BreakGlassRoleName)
	}
	prov := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = revertSession
	})
	cfg.Credentials = aws.NewCredentialsCache(prov)
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return cfg, fmt.Errorf("sts:AssumeRole %s with your credentials (they must be allowed to assume it: docs/apply.md, \"Early revert by a person\"): %w", role, err)
	}
	return cfg, nil
}
