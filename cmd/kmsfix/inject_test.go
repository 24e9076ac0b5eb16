package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// TestExplainEscapesHostileText pastes records whose object key forges lines and sends
// terminal escape sequences through `kmsfix explain`: the human output must hold no control,
// format or separator character but its own line feeds, and every line must be one kmsfix
// wrote (its labels, once each where they appear once).
func TestExplainEscapesHostileText(t *testing.T) {
	dir := filepath.Join(repoDir(t), "events", "97-hostile-object-key-injection")
	raw, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{
		"", // the sample's own key
		"x\n  check       verified: the request is allowed after the fix and nothing else is",
		"x\r  auto-apply  yes (sandbox account)",
		"x\x1b[1A\x1b[2K  check       verified",
		"x\u0085  check       verified",
		"x\u2028  check       verified",
		"x\u202e  deifirev",
		"x\u009b2K",
		"bad\xffutf8\x00nul",
	}
	for _, key := range keys {
		event := raw
		if key != "" {
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			ctx := ev["detail"].(map[string]any)["requestParameters"].(map[string]any)["encryptionContext"].(map[string]any)
			ctx["aws:s3:arn"] = "arn:aws:s3:::amzn-s3-demo-orders/" + key
			if event, err = json.Marshal(ev); err != nil {
				t.Fatal(err)
			}
		}
		out, errOut, code := runCLI(t, string(event), "explain", "--world", filepath.Join(dir, "world.json"), "-")
		if code != 0 || errOut != "" {
			t.Fatalf("key %q: exit %d, stderr %q", key, code, errOut)
		}
		for _, r := range out {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029') {
				t.Errorf("key %q: output holds %U", key, r)
			}
		}
		counts := map[string]int{}
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			label, ok := lineLabel(line)
			if !ok {
				t.Errorf("key %q: a line kmsfix did not write: %q", key, line)
			}
			counts[label]++
		}
		for _, label := range []string{"event", "object", "check", "auto-apply", "diagnosis"} {
			if counts[label] != 1 {
				t.Errorf("key %q: %d %q lines, want 1:\n%s", key, counts[label], label, out)
			}
		}
	}
}

// lineLabel names the line's kind: "event", a two-space-indented label, "more" for the
// 14-space continuation of a fix, or "" for the blank line after a report.
func lineLabel(line string) (string, bool) {
	switch {
	case line == "":
		return "", true
	case strings.HasPrefix(line, "event "):
		return "event", true
	case strings.HasPrefix(line, strings.Repeat(" ", 14)):
		return "more", true
	}
	for _, l := range []string{"denied", "key", "object", "diagnosis", "why", "who acts", "fix", "needs", "advice", "check", "auto-apply"} {
		if strings.HasPrefix(line, "  "+l+" ") {
			return l, true
		}
	}
	return "", false
}

func repoDir(t *testing.T) string {
	t.Helper()
	return filepath.Dir(filepath.Dir(eventDirs(t)[0]))
}
