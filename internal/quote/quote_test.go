package quote_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kmsfix/kmsfix/internal/quote"
)

// hostile are values an attacker can put in a bucket name, an object key, a role name or any
// other field of a CloudTrail record that ends up in a suggested command or a message.
var hostile = []string{
	"",
	"plain-bucket",
	"a b",
	"x; touch PWNED",
	"x && touch PWNED",
	"$(touch PWNED)",
	"`touch PWNED`",
	"x | touch PWNED",
	"x\ntouch PWNED",
	"x\rtouch PWNED",
	"it's",
	"'; touch PWNED; '",
	`"; touch PWNED; "`,
	`\'; touch PWNED; #`,
	"${IFS}touch${IFS}PWNED",
	"*", "?", "[a]", "~root", "=ls", "-rf", "--endpoint-url=http://evil",
	"#comment", "a#b", "!!", "x>PWNED", "x<PWNED", "(touch PWNED)", "{touch,PWNED}",
	"\x1b]0;title\x07", "\x00nul", "é-ü-☃", "\u202emoc.elgoog", "\xff\xfe",
}

// TestShellRoundTrip pastes every quoted value into real shells: the argument must arrive
// byte for byte and nothing may run (no file appears in the working directory).
func TestShellRoundTrip(t *testing.T) {
	shells := []string{"/bin/sh"}
	for _, s := range []string{"bash", "dash", "zsh"} {
		if p, err := exec.LookPath(s); err == nil {
			shells = append(shells, p)
		}
	}
	for _, sh := range shells {
		for _, v := range hostile {
			if strings.IndexByte(v, 0) >= 0 {
				continue // no argv can carry NUL; covered by TestShellNUL
			}
			dir := t.TempDir()
			// printf writes the argument between markers: what arrived, exactly.
			cmd := exec.Command(sh, "-c", "printf '<%s>' "+quote.Shell(v))
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %q quoted as %s: %v: %s", sh, v, quote.Shell(v), err, out)
				continue
			}
			if got := string(out); got != "<"+v+">" {
				t.Errorf("%s: %q quoted as %s arrived as %q", sh, v, quote.Shell(v), got)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("%s: pasting %s created %s", sh, quote.Shell(v), entries[0].Name())
			}
		}
	}
}

func TestShellNUL(t *testing.T) {
	// A NUL cannot reach a command's arguments; the quoted word must still be one word that
	// runs nothing. The shell truncates or drops it; either way only printf runs.
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", "printf '<%s>' "+quote.Shell("x\x00; touch PWNED"))
	cmd.Dir = dir
	_, _ = cmd.CombinedOutput()
	if _, err := os.Stat(filepath.Join(dir, "PWNED")); err == nil {
		t.Fatal("a NUL byte let a command run")
	}
}

func TestShellLeavesPlainWordsReadable(t *testing.T) {
	for _, v := range []string{"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"my.bucket-01", "eu-west-1", "arn:aws:iam::111122223333:role/path/app+reader@x=y,z"} {
		if got := quote.Shell(v); got != v {
			t.Errorf("Shell(%q) = %s, want it unquoted", v, got)
		}
	}
	if got := quote.Command("aws", "s3api", "get-bucket-encryption", "--bucket", "x; touch PWNED"); got != `aws s3api get-bucket-encryption --bucket 'x; touch PWNED'` {
		t.Errorf("Command = %s", got)
	}
}

// FuzzShell: any string, quoted, is one shell word that arrives unchanged (checked without a
// shell: the quoted form is 'a'\”b' and nothing outside quotes but \').
func FuzzShell(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		q := quote.Shell(v)
		if unquoteSingle(t, q) != v {
			t.Fatalf("Shell(%q) = %s does not unquote to the input", v, q)
		}
	})
}

// unquoteSingle reads a word made only of unquoted safe characters, '...' runs and \'.
func unquoteSingle(t *testing.T, q string) string {
	var b strings.Builder
	for i := 0; i < len(q); {
		switch {
		case q[i] == '\'':
			j := strings.IndexByte(q[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated quote in %s", q)
			}
			b.WriteString(q[i+1 : i+1+j])
			i += j + 2
		case strings.HasPrefix(q[i:], `\'`):
			b.WriteByte('\'')
			i += 2
		case strings.IndexByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-", q[i]) >= 0:
			b.WriteByte(q[i])
			i++
		default:
			t.Fatalf("unquoted special byte %q in %s", q[i], q)
		}
	}
	return b.String()
}

// TestTextForgesNoLine: no escaped value holds a character that moves the cursor, starts an
// escape sequence, reorders or hides text, or is not UTF-8.
func TestTextForgesNoLine(t *testing.T) {
	cases := map[string]string{
		"key\n  check       verified":  `key\n  check       verified`,
		"\x1b[2K\x1b[1Acheck verified": `\x1b[2K\x1b[1Acheck verified`,
		"a\rb\tc":                      `a\rb\tc`,
		"\u202egnp.exe":                `\u202egnp.exe`,
		"\u0085next":                   `\u0085next`,
		"zero\u200bwidth":              `zero\u200bwidth`,
		"line\u2028sep":                `line\u2028sep`,
		"bad\xffutf8":                  `bad\xffutf8`,
		"del\x7f":                      `del\x7f`,
		`back\slash é ☃`:               `back\slash é ☃`,
	}
	for in, want := range cases {
		if got := quote.Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
	if got := quote.Block("{\n  \"k\": \"\x1b[31m\"\n}"); got != "{\n  \"k\": \"\\x1b[31m\"\n}" {
		t.Errorf("Block kept or lost the wrong characters: %q", got)
	}
}

func FuzzText(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, out := range []string{quote.Text(v), quote.Mrkdwn(v)} {
			if !utf8.ValidString(out) {
				t.Fatalf("escaped %q is not UTF-8: %q", v, out)
			}
			for _, r := range out {
				if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
					t.Fatalf("escaped %q still holds %U", v, r)
				}
			}
		}
		if m := quote.Mrkdwn(v); strings.ContainsAny(m, "<>`") {
			t.Fatalf("Mrkdwn(%q) = %q holds Slack control syntax", v, m)
		}
	})
}

func TestMrkdwn(t *testing.T) {
	cases := map[string]string{
		"<!channel> hi":                    "&lt;!channel&gt; hi",
		"<https://evil.example|AWS login>": "&lt;https://evil.example|AWS login&gt;",
		"a & b":                            "a &amp; b",
		"key` *verified* `":                "key\u02cb *verified* \u02cb",
		"two\nlines":                       `two\nlines`,
		"&lt;":                             "&amp;lt;",
	}
	for in, want := range cases {
		if got := quote.Mrkdwn(in); got != want {
			t.Errorf("Mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}
