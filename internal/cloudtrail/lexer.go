package cloudtrail

import (
	"errors"
	"fmt"
	"io"
)

// lexer checks JSON grammar on a stream in one pass and constant memory: it holds its read
// buffer, the bytes of the value being captured (up to a cap; past it only the size is
// counted) and one byte per open array or object (up to a depth cap). Whitespace and skipped
// bytes are consumed as they are read, so every input byte costs the same: time is linear
// in the input whatever its shape.
//
// encoding/json.Decoder is not used for the stream because it buffers a whole value before
// decoding it (a 1 GiB string is 1 GiB of memory) and its Token/More rescan the whitespace
// they have buffered at every refill (Decoder.peek never advances past whitespace), which
// makes long whitespace runs quadratic.
type lexer struct {
	r        io.Reader
	buf      []byte
	pos, end int
	base     int64 // input offset of buf[0]
	rerr     error // error of the last read, reported once buf is drained

	capt    *capture // bytes consumed since capFrom go here (nil: none)
	keyCapt *capture // a second sink, for object keys read inside a captured value
	capFrom int

	stack    []byte // open '{' and '[' of the value being read
	maxDepth int
}

// capture collects the bytes of one value, up to max.
type capture struct {
	b    []byte
	max  int
	over bool  // the value is longer than max: b is incomplete
	size int64 // the value's length so far
}

func (c *capture) reset() { c.b, c.over, c.size = c.b[:0], false, 0 }

func (c *capture) add(p []byte) {
	c.size += int64(len(p))
	if c.over {
		return
	}
	if len(c.b)+len(p) > c.max {
		c.over = true
		return
	}
	c.b = append(c.b, p...)
}

// syntaxError is a grammar error at an input offset.
type syntaxError struct {
	msg    string
	offset int64
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.offset, e.msg)
}

// errEOF: the input ends inside a JSON value.
var errEOF = errors.New("input ends inside a JSON value")

func newLexer(r io.Reader, bufSize, maxDepth int) *lexer {
	return &lexer{r: r, buf: make([]byte, bufSize), maxDepth: maxDepth}
}

func (l *lexer) offset() int64 { return l.base + int64(l.pos) }

func (l *lexer) errorf(format string, a ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, a...), offset: l.offset()}
}

// eof is the error for input that ends where more is needed: the read error, if any.
func (l *lexer) eof() error {
	if l.rerr != nil && l.rerr != io.EOF {
		return l.rerr
	}
	return errEOF
}

// flush hands the bytes consumed since the last flush to the captures.
func (l *lexer) flush() {
	seg := l.buf[l.capFrom:l.pos]
	if l.capt != nil {
		l.capt.add(seg)
	}
	if l.keyCapt != nil {
		l.keyCapt.add(seg)
	}
	l.capFrom = l.pos
}

// fill reads more input once buf is consumed; false at the end of input or on a read error.
func (l *lexer) fill() bool {
	if l.pos < l.end {
		return true
	}
	l.flush()
	l.base += int64(l.end)
	l.pos, l.end, l.capFrom = 0, 0, 0
	for l.rerr == nil {
		n, err := l.r.Read(l.buf)
		l.end, l.rerr = n, err
		if n > 0 {
			return true
		}
	}
	return false
}

func (l *lexer) startCapture(c *capture) {
	l.flush()
	c.reset()
	l.capt = c
}

func (l *lexer) endCapture() {
	l.flush()
	l.capt = nil
}

// skipToLine consumes input up to the next line that starts with '{' or '[' (not consumed);
// false at the end of input.
func (l *lexer) skipToLine() bool {
	afterNL := false
	for {
		for l.pos < l.end {
			c := l.buf[l.pos]
			if afterNL && (c == '{' || c == '[') {
				return true
			}
			afterNL = c == '\n'
			l.pos++
		}
		if !l.fill() {
			return false
		}
	}
}

// unread puts b, read before from input offset at, back in front of the unread input.
func (l *lexer) unread(b []byte, at int64) {
	rest := l.buf[l.pos:l.end]
	nb := make([]byte, 0, max(len(b)+len(rest), len(l.buf)))
	nb = append(append(nb, b...), rest...)
	l.buf, l.pos, l.end, l.capFrom = nb[:cap(nb)], 0, len(nb), 0
	l.base = at
}

// skipSpace consumes whitespace; false at the end of input.
func (l *lexer) skipSpace() bool {
	for {
		for l.pos < l.end {
			switch l.buf[l.pos] {
			case ' ', '\t', '\n', '\r':
				l.pos++
			default:
				return true
			}
		}
		if !l.fill() {
			return false
		}
	}
}

// peek skips whitespace and returns the next byte; false at the end of input.
func (l *lexer) peek() (byte, bool) {
	if !l.skipSpace() {
		return 0, false
	}
	return l.buf[l.pos], true
}

// expect consumes the next non-space byte, which must be c.
func (l *lexer) expect(c byte, what string) error {
	got, ok := l.peek()
	if !ok {
		return l.eof()
	}
	if got != c {
		return l.errorf("%s %q, want %q", what, got, c)
	}
	l.pos++
	return nil
}

// str consumes a string; buf[pos] is its opening quote.
func (l *lexer) str() error {
	l.pos++
	for {
		for l.pos < l.end {
			c := l.buf[l.pos]
			switch {
			case c == '"':
				l.pos++
				return nil
			case c == '\\':
				l.pos++
				if err := l.escape(); err != nil {
					return err
				}
				continue
			case c < 0x20:
				return l.errorf("control character %#x in a string", c)
			}
			l.pos++
		}
		if !l.fill() {
			return l.eof()
		}
	}
}

// escape consumes what follows a backslash.
func (l *lexer) escape() error {
	c, ok := l.next()
	if !ok {
		return l.eof()
	}
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return nil
	case 'u':
		for range 4 {
			h, ok := l.next()
			if !ok {
				return l.eof()
			}
			if !isHex(h) {
				return l.errorf("invalid \\u escape")
			}
		}
		return nil
	}
	return l.errorf("invalid escape \\%c", c)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (l *lexer) next() (byte, bool) {
	if l.pos == l.end && !l.fill() {
		return 0, false
	}
	c := l.buf[l.pos]
	l.pos++
	return c, true
}

// literal consumes true, false or null.
func (l *lexer) literal(word string) error {
	for i := 0; i < len(word); i++ {
		c, ok := l.next()
		if !ok {
			return l.eof()
		}
		if c != word[i] {
			l.pos--
			return l.errorf("invalid literal, want %s", word)
		}
	}
	return nil
}

// number consumes a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (l *lexer) number() error {
	peek := func() byte {
		if l.pos == l.end && !l.fill() {
			return 0 // end of input ends the number
		}
		return l.buf[l.pos]
	}
	digits := func() error {
		if c := peek(); c < '0' || c > '9' {
			return l.errorf("invalid number: want a digit")
		}
		for c := peek(); '0' <= c && c <= '9'; c = peek() {
			l.pos++
		}
		return nil
	}
	if peek() == '-' {
		l.pos++
	}
	if peek() == '0' {
		l.pos++
	} else if err := digits(); err != nil {
		return err
	}
	if peek() == '.' {
		l.pos++
		if err := digits(); err != nil {
			return err
		}
	}
	if c := peek(); c == 'e' || c == 'E' {
		l.pos++
		if c := peek(); c == '+' || c == '-' {
			l.pos++
		}
		if err := digits(); err != nil {
			return err
		}
	}
	return nil
}

// scalar consumes a string, number or literal starting at buf[pos]; false when buf[pos]
// starts none.
func (l *lexer) scalar() (bool, error) {
	switch c := l.buf[l.pos]; {
	case c == '"':
		return true, l.str()
	case c == 't':
		return true, l.literal("true")
	case c == 'f':
		return true, l.literal("false")
	case c == 'n':
		return true, l.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return true, l.number()
	}
	return false, nil
}

// value consumes one JSON value (and the whitespace before it), checking its grammar.
func (l *lexer) value() error {
	l.stack = l.stack[:0]
	for {
		// A value is expected.
		c, ok := l.peek()
		if !ok {
			return l.eof()
		}
		switch c {
		case '{', '[':
			if len(l.stack) >= l.maxDepth {
				return l.errorf("nested deeper than %d levels", l.maxDepth)
			}
			l.pos++
			l.stack = append(l.stack, c)
			n, ok := l.peek()
			if !ok {
				return l.eof()
			}
			if c == '{' && n == '"' {
				if err := l.memberKey(); err != nil {
					return err
				}
				continue
			}
			if c == '[' && n != ']' {
				continue
			}
			if c == '{' && n != '}' {
				return l.errorf("unexpected %q where an object key is expected", n)
			}
			// An empty object or array: close it below.
		default:
			isScalar, err := l.scalar()
			if err != nil {
				return err
			}
			if !isScalar {
				return l.errorf("unexpected %q where a value is expected", c)
			}
		}
		// A value ended (or an empty container is about to): close what ends here.
		for {
			if len(l.stack) == 0 {
				return nil
			}
			c, ok := l.peek()
			if !ok {
				return l.eof()
			}
			top := l.stack[len(l.stack)-1]
			if c == ',' {
				l.pos++
				if top == '{' {
					if n, ok := l.peek(); !ok {
						return l.eof()
					} else if n != '"' {
						return l.errorf("unexpected %q where an object key is expected", n)
					}
					if err := l.memberKey(); err != nil {
						return err
					}
				}
				break
			}
			if c == '}' && top == '{' || c == ']' && top == '[' {
				l.pos++
				l.stack = l.stack[:len(l.stack)-1]
				continue
			}
			return l.errorf("unexpected %q after a value", c)
		}
	}
}

// memberKey consumes an object key (buf[pos] is its quote) and the colon after it.
func (l *lexer) memberKey() error {
	if err := l.str(); err != nil {
		return err
	}
	return l.expect(':', "after an object key:")
}
