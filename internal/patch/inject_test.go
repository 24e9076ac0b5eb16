package patch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsfix/kmsfix/internal/cloudtrail"
	"github.com/kmsfix/kmsfix/internal/diagnose"
	"github.com/kmsfix/kmsfix/internal/policy"
	"github.com/kmsfix/kmsfix/internal/world"
)

// hostileValues go into every field of a denial that reaches a suggested command. The
// parser validates names and ARNs; these tests hand the command builders what it would
// refuse, so quoting holds even where validation has a gap.
var hostileValues = []string{
	"x; touch PWNED",
	"$(touch PWNED)",
	"`touch PWNED`",
	"x' ; touch PWNED ; '",
	"x\ntouch PWNED",
	`x"; touch PWNED; "`,
	"x && touch PWNED #",
	"x > PWNED",
}

// hostileDenial puts v in the bucket, the key ARN and both Regions, the role name and the
// accounts.
func hostileDenial(v string, kind cloudtrail.PrincipalKind) *cloudtrail.Denial {
	arn := "arn:aws:iam::999988887777:role/" + v
	if kind == cloudtrail.KindUser {
		arn = "arn:aws:iam::999988887777:user/" + v
	}
	return &cloudtrail.Denial{
		EventID: "e1", EventName: "Decrypt", Region: v,
		Identity: cloudtrail.Identity{Kind: kind, PrincipalARN: arn, Account: "999988887777" + v, Editable: true},
		KeyARN:   v, KeyAccount: "111122223333" + v, KeyRegion: v,
		ContextARN: "arn:aws:s3:::" + v, Bucket: v, BucketKey: true,
		Actions: []string{"kms:Decrypt"},
	}
}

// commandsFor collects every command kmsfix would suggest for d: the patches' commands and
// the advice lines that are commands, over the findings a hostile denial can reach.
func commandsFor(d *cloudtrail.Denial) []string {
	var out []string
	f := Sides{NeedIdentity: true, NeedKeyPolicy: true}
	for _, w := range []*world.World{
		{}, // key policy unknown: get, jq, put
		{Keys: map[string]*world.Key{d.KeyARN: {Policy: &policy.Document{Version: "2012-10-17"}}}}, // merged policy
	} {
		for _, p := range Build(d, f, w) {
			out = append(out, p.Commands...)
		}
	}
	for _, w := range []*world.World{
		{MissingKeys: []string{d.KeyARN}},
		{Keys: map[string]*world.Key{d.KeyARN: {State: world.StateDisabled}}},
		{Keys: map[string]*world.Key{d.KeyARN: {State: world.StatePendingDeletion}}},
		{Keys: map[string]*world.Key{d.KeyARN: {State: world.StatePendingImport}}},
		{Keys: map[string]*world.Key{d.KeyARN: {Manager: "AWS", Aliases: []string{"alias/aws/s3"}}}},
	} {
		for _, a := range diagnose.Diagnose(d, w).Advice {
			if strings.HasPrefix(a, "aws ") {
				out = append(out, a)
			}
		}
	}
	// The AWS managed key of the caller's own account: the advice simulates the principal.
	same := *d
	same.KeyAccount = d.Identity.Account
	for _, a := range diagnose.Diagnose(&same, &world.World{Keys: map[string]*world.Key{d.KeyARN: {Manager: "AWS", Aliases: []string{"alias/aws/s3"}}}}).Advice {
		if strings.HasPrefix(a, "aws ") {
			out = append(out, a)
		}
	}
	return out
}

// TestPastedCommandsRunNothing pastes every suggested command into sh with aws and jq
// replaced by functions that record their arguments: no file named PWNED may appear, and
// each option that carries a value from the event must receive it byte for byte.
func TestPastedCommandsRunNothing(t *testing.T) {
	seen := map[string]int{}
	for _, v := range hostileValues {
		for _, kind := range []cloudtrail.PrincipalKind{cloudtrail.KindRole, cloudtrail.KindUser, cloudtrail.KindSSORole} {
			d := hostileDenial(v, kind)
			cmds := commandsFor(d)
			if len(cmds) < 8 {
				t.Fatalf("only %d commands for %q: the builders changed, extend this test", len(cmds), v)
			}
			for _, c := range cmds {
				for _, call := range runPasted(t, c) {
					for i := 1; i+1 < len(call); i++ {
						opt, val := call[i], call[i+1]
						want, checked := map[string]string{
							"--bucket": v, "--key-id": v, "--region": v, "--role-name": v, "--user-name": v,
							"--resource-arns": v, "--policy-source-arn": hostileDenial(v, kind).Identity.PrincipalARN,
						}[opt]
						if !checked {
							continue
						}
						seen[opt]++
						if val != want {
							t.Errorf("%s received %q, want %q\ncommand: %s", opt, val, want, c)
						}
					}
				}
			}
		}
	}
	for _, opt := range []string{"--bucket", "--key-id", "--region", "--role-name", "--user-name", "--resource-arns", "--policy-source-arn"} {
		if seen[opt] == 0 {
			t.Errorf("no command passed %s: the test no longer covers it", opt)
		}
	}
}

// runPasted runs one command line in sh, in an empty directory, and returns the argument
// lists aws and jq received.
func runPasted(t *testing.T, command string) [][]string {
	t.Helper()
	dir := t.TempDir()
	work := filepath.Join(dir, "cwd")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "calls")
	script := `rec() { for a in "$@"; do printf '%s\0' "$a"; done; printf '\001\0'; } >>"$CALLS"
aws() { rec aws "$@"; }
jq() { rec jq "$@"; }
` + command
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/bin:/bin", "CALLS=" + log, "INSTANCE_ARN=i", "PERMISSION_SET_ARN=p", "NEW_KEY_ARN=k"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh failed on %s: %v\n%s", command, err, out)
	}
	for _, dirToCheck := range []string{dir, work} {
		entries, _ := os.ReadDir(dirToCheck)
		for _, e := range entries {
			switch e.Name() {
			case "cwd", "calls", "key-policy.json", "key-policy.new.json", "permission-set-policy.json", "permission-set-policy.new.json":
			default:
				t.Errorf("pasting %q created %s", command, e.Name())
			}
		}
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		if strings.HasPrefix(command, "#") {
			return nil // a comment line runs nothing
		}
		t.Fatalf("%s called neither aws nor jq: %v", command, err)
	}
	var calls [][]string
	var cur []string
	for _, f := range bytes.Split(bytes.TrimSuffix(raw, []byte{0}), []byte{0}) {
		if string(f) == "\001" {
			calls = append(calls, cur)
			cur = nil
			continue
		}
		cur = append(cur, string(f))
	}
	if len(calls) != 1 {
		t.Errorf("one pasted line made %d calls: %s", len(calls), command)
	}
	return calls
}
