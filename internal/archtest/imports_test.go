// Package archtest checks the import rules of docs/architecture.md: data flows one way, down
// the layers, and the pure core reads no AWS.
package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/kmsfix/kmsfix/"

// layer of each package, in flow order (docs/architecture.md): a package may import only
// packages of a lower layer. A package not listed is checked only by the rules below it.
var layer = map[string]int{
	"internal/policy": 0, "internal/quote": 0, "internal/retry": 0, "internal/emf": 0, "internal/arns": 0, "internal/eventpattern": 0, "internal/s3read": 0,
	"internal/cloudtrail": 1, "internal/finding": 1, "internal/world": 1,
	"internal/request": 2, "internal/config": 2,
	"internal/diagnose": 3, "internal/patch": 3, "internal/enrich": 3,
	"internal/decision": 4,
	"internal/engine":   5,
	"internal/pipeline": 6,
	"internal/notify":   7, "internal/apply": 7, "internal/crossaccount": 7, "internal/scan": 7,
	"internal/why": 7, "internal/drift": 7,
	"internal/remediator": 8, "internal/doctor": 8, // doctor checks the notifier's secret format
	"internal/hub":      8, // the organization's accounts: enrich's reads and apply's levers, per account
	"internal/orgroute": 8, // the hub's routes: config's entries and Organizations -> notify.Routed

	"internal/function": 9, // the function's one wiring: the Lambda's handler from its configuration

	"functions/remediator": 10, "cmd/kmsfix": 10, "infra": 10, "bench/storm": 10,
}

// pure packages decide from what they are given: no AWS SDK, no clock-driven I/O packages.
var pure = []string{"internal/policy", "internal/cloudtrail", "internal/finding", "internal/world",
	"internal/request", "internal/diagnose", "internal/patch", "internal/decision", "internal/engine"}

// imports returns, per package directory, the module packages its non-test files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	root := filepath.Join("..", "..")
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "cdk.out") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !slices.Contains(out[rel], p) {
				out[rel] = append(out[rel], p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shipped says a package ends up in the Lambda or the CLI (not a fake, a benchmark or a dev tool).
func shipped(pkg string) bool {
	return !strings.HasPrefix(pkg, "internal/testenv") && !strings.HasPrefix(pkg, "bench/") &&
		pkg != "functions/remediator/localinvoke"
}

func TestImportsFlowDown(t *testing.T) {
	all := imports(t)
	if len(all["internal/remediator"]) == 0 {
		t.Fatal("found no packages: wrong root?")
	}
	for pkg, imps := range all {
		for _, imp := range imps {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if strings.HasPrefix(dep, "internal/testenv") && shipped(pkg) {
				t.Errorf("%s imports %s: test fakes are for tests only", pkg, dep)
				continue
			}
			lp, okp := layer[pkg]
			ld, okd := layer[dep]
			if okp && okd && ld >= lp {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go down the layers (docs/architecture.md)", pkg, lp, dep, ld)
			}
			if dep == "internal/remediator" && shipped(pkg) && pkg != "internal/function" && pkg != "functions/remediator" {
				t.Errorf("%s imports the Lambda handler; only the function (functions/remediator) and its wiring (internal/function) may", pkg)
			}
		}
	}
}

// The fingerprint lives in finding: the steps that need it do not reach into notify.
func TestOutputsDoNotImportNotify(t *testing.T) {
	all := imports(t)
	for _, pkg := range []string{"internal/apply", "internal/crossaccount", "internal/scan"} {
		if slices.Contains(all[pkg], module+"internal/notify") {
			t.Errorf("%s imports internal/notify", pkg)
		}
	}
}

func TestPureCoreReadsNoAWS(t *testing.T) {
	all := imports(t)
	for _, pkg := range pure {
		for _, imp := range all[pkg] {
			// aws/arn is a string parser; service clients, smithy and net/http are I/O.
			if (strings.HasPrefix(imp, "github.com/aws/") && imp != "github.com/aws/aws-sdk-go-v2/aws/arn") ||
				imp == "net/http" || imp == "os/exec" {
				t.Errorf("%s imports %s: the pure core decides from what it is given", pkg, imp)
			}
		}
	}
}
