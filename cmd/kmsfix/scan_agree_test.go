package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer"
	"github.com/aws/aws-sdk-go-v2/service/accessanalyzer/types"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/finding"
	"github.com/kmsfix/kmsfix/internal/pipeline"
	"github.com/kmsfix/kmsfix/internal/remediator"
	"github.com/kmsfix/kmsfix/internal/scan"
	"github.com/kmsfix/kmsfix/internal/world"
)

// worldFile is an enricher that answers with a sample's world (a fresh copy per call): the
// same AWS state for both sides.
type worldFile struct{ raw []byte }

func (f worldFile) World(context.Context, *cloudtrail.Denial) *world.World {
	w, err := world.Parse(f.raw)
	if err != nil {
		panic(err)
	}
	return w
}

// analyzer answers ValidatePolicy the way one test case wants.
type analyzer func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error)

func (a analyzer) ValidatePolicy(_ context.Context, in *accessanalyzer.ValidatePolicyInput, _ ...func(*accessanalyzer.Options)) (*accessanalyzer.ValidatePolicyOutput, error) {
	return a(in)
}

type collect struct{ got []finding.Report }

func (c *collect) Notify(_ context.Context, r finding.Report) error {
	c.got = append(c.got, r)
	return nil
}

// `kmsfix scan --live` and the Lambda say the same verified (and the same reason) for the same
// event and the same AWS state, whatever Access Analyzer answers: both run pipeline.Live.
func TestScanLiveAgreesWithLambda(t *testing.T) {
	analyzers := map[string]analyzer{
		"clean": func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
			return &accessanalyzer.ValidatePolicyOutput{}, nil
		},
		"security warning": func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
			return &accessanalyzer.ValidatePolicyOutput{Findings: []types.ValidatePolicyFinding{{
				FindingType: types.ValidatePolicyFindingTypeSecurityWarning, IssueCode: aws.String("PASS_ROLE_WITH_STAR_IN_RESOURCE"),
				FindingDetails: aws.String("x")}}}, nil
		},
		"down": func(*accessanalyzer.ValidatePolicyInput) (*accessanalyzer.ValidatePolicyOutput, error) {
			return nil, errors.New("connection refused")
		},
	}
	samples, err := filepath.Glob("../../events/*/world.json")
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	verifiedSomewhere := map[string]bool{}
	for _, worldPath := range samples {
		dir := filepath.Dir(worldPath)
		event, err := os.ReadFile(filepath.Join(dir, "event.json"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(worldPath)
		if err != nil {
			t.Fatal(err)
		}
		files := t.TempDir()
		if err := os.WriteFile(filepath.Join(files, "event.json"), event, 0o644); err != nil {
			t.Fatal(err)
		}
		for name, aa := range analyzers {
			// The Lambda.
			notified := &collect{}
			h := &remediator.Handler{
				Enricher: worldFile{raw}, Validator: pipeline.NewValidator(aa, time.Minute, time.Second),
				Notifier: notified, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			lambda, herr := h.Handle(context.Background(), event)
			if herr != nil {
				t.Fatalf("%s/%s: lambda: %v", dir, name, herr)
			}
			// kmsfix scan --live over the same record in a log file.
			res, serr := scan.FromFiles(context.Background(), files, time.Time{}, time.Time{}, scan.Options{
				Explain: scanExplainer(&pipeline.Live{Enricher: worldFile{raw}, Checker: pipeline.NewValidator(aa, time.Minute, time.Second)}),
			})
			if serr != nil {
				t.Fatalf("%s/%s: scan: %v", dir, name, serr)
			}
			if strings.HasPrefix(lambda.Ignored, "malformed event") {
				continue // a file form (log file, lookup-events output) EventBridge never delivers
			}
			if lambda.Ignored != "" || lambda.Diagnosis == "" {
				if len(res.Groups) != 0 {
					t.Errorf("%s/%s: the Lambda ignores the event (%q), scan reports %s", dir, name, lambda.Ignored, res.Groups[0].Report.Diagnosis)
				}
				continue
			}
			if len(res.Groups) != 1 {
				t.Fatalf("%s/%s: scan found %d findings, want 1", dir, name, len(res.Groups))
			}
			scanned := res.Groups[0].Report
			if scanned.Verified != lambda.Verified || scanned.Unverified != lambda.Unverified || scanned.Diagnosis != lambda.Diagnosis {
				t.Errorf("%s/%s: scan --live says verified=%v (%q) %s, the Lambda verified=%v (%q) %s", dir, name,
					scanned.Verified, scanned.Unverified, scanned.Diagnosis, lambda.Verified, lambda.Unverified, lambda.Diagnosis)
			}
			if lambda.Verified {
				verifiedSomewhere[name] = true
			}
		}
	}
	// The comparison means something only if the clean analyzer lets some patch be verified and
	// the others never do.
	if !verifiedSomewhere["clean"] || verifiedSomewhere["security warning"] || verifiedSomewhere["down"] {
		t.Errorf("verified by analyzer: %v; want only clean", verifiedSomewhere)
	}
}

// The CLI's live pipeline validates with Access Analyzer, like the Lambda's.
func TestLivePipelineValidates(t *testing.T) {
	if l := livePipeline(aws.Config{Region: "us-east-1"}); l.Checker == nil || l.Enricher == nil {
		t.Errorf("livePipeline = %+v, want an enricher and Access Analyzer", l)
	}
}
