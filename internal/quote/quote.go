// Package quote holds the one quoting rule of each output kmsfix writes for people: POSIX
// shell words for every command it suggests (Shell), visible escapes for control characters in
// terminal text (Text, Block), and Slack mrkdwn for every field of a Slack message (Mrkdwn).
// Every value that came from an event, a policy or an AWS answer is untrusted text: it goes
// through one of these before it reaches a shell, a terminal or Slack. JSON output needs none
// of them: encoding/json escapes what JSON must.
package quote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Shell returns s as one POSIX shell word that the shell passes on byte for byte: unchanged
// when it holds only characters no POSIX shell (nor bash or zsh) treats specially, otherwise
// in single quotes, inside which every byte is literal except the quote itself, written as
// '\” (close, escaped quote, reopen). POSIX.1-2017 XCU 2.2.3 "Single-Quotes":
// https://pubs.opengroup.org/onlinepubs/9699919799/utilities/V3_chap02.html#tag_18_02_03
func Shell(s string) string {
	if s != "" && plainWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plainWord: letters, digits and @%+=:,./_- only, and no leading '=' (zsh expands =cmd to a
// path). Quoting cannot stop a value from being read as an option; the values kmsfix puts in
// commands are validated names and ARNs, none of which starts with '-'.
func plainWord(s string) bool {
	if s[0] == '=' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// Command joins words into one command line, each quoted with Shell.
func Command(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Shell(w)
	}
	return strings.Join(q, " ")
}

// Text makes s safe to print as part of one line of terminal text: every character that
// moves the cursor, starts an escape sequence, reorders text or hides it (C0 and C1 controls,
// DEL, Unicode format characters such as bidi overrides and zero-width characters, line and
// paragraph separators) and every byte that is not UTF-8 is written as a visible escape
// (\n, \x1b, \u202e). Printable text, backslashes included, is unchanged.
func Text(s string) string { return escape(s, false) }

// Block is Text for text kmsfix laid out over several lines itself (indented JSON): line
// feeds stay, everything else Text escapes is escaped.
func Block(s string) string { return escape(s, true) }

func escape(s string, keepNewlines bool) string {
	if !needsEscape(s, keepNewlines) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' && keepNewlines:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80 && hidden(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case hidden(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string, keepNewlines bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			// Slow path for anything not ASCII: decode and check properly.
			for _, r := range s[i:] {
				if r == utf8.RuneError || hidden(r) {
					return true
				}
			}
			return false
		}
		if c == '\n' && keepNewlines {
			continue
		}
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

// hidden: control characters (Cc: C0, DEL, C1), format characters (Cf: bidi embeddings,
// overrides and isolates, zero-width joiners and spaces, the BOM, soft hyphen) and the line
// and paragraph separators (Zl, Zp).
func hidden(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// Mrkdwn makes untrusted text literal inside Slack mrkdwn, inside or outside a `code span`:
// Slack reads &, < and > as control characters (mentions such as <!channel>, links such as
// <url|label>) and asks for them as &amp; &lt; &gt;
// (https://api.slack.com/reference/surfaces/formatting#escaping); mrkdwn has no escape for the
// backtick, so a backtick, which would end a code span and let the rest be read as markup,
// is replaced by the modifier letter grave accent U+02CB (ˋ); control characters are escaped
// as in Text, so no value can start a line of its own.
func Mrkdwn(s string) string {
	return mrkdwnEscaper.Replace(Text(s))
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb")
