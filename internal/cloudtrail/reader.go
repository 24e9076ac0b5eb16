package cloudtrail

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// Limits bound what one input may cost. A zero field takes its default.
type Limits struct {
	// MaxRecord is the largest record read, in bytes. A larger record is reported as a
	// *RecordError and skipped without being held in memory. Memory stays proportional to it.
	MaxRecord int
	// MaxDepth is the deepest nesting of arrays and objects in a value; deeper input stops
	// the read of that input.
	MaxDepth int
	// MaxExpanded is the most bytes a gzip input may decompress to.
	MaxExpanded int64
	// MaxRatio is the most a gzip input may expand relative to its compressed size, checked
	// once RatioFloor bytes have been decompressed.
	MaxRatio   int64
	RatioFloor int64
}

// Defaults of Limits.
//
// CloudTrail's own limit on an event is 256 KB, or 1 MB for event data stores set to
// MaxEventSize Large (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_PutEventConfiguration.html);
// DefaultMaxRecord leaves room above it for pretty-printed copies. CloudTrail log files
// compress about 10 to 20 times; a ratio over 200 past the first 16 MiB is a bomb
// (deflate's ceiling is about 1032), not a log.
const (
	DefaultMaxRecord   = 2 << 20
	DefaultMaxDepth    = 512
	DefaultMaxExpanded = 16 << 30
	DefaultMaxRatio    = 200
	DefaultRatioFloor  = 16 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxRecord <= 0 {
		l.MaxRecord = DefaultMaxRecord
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxExpanded <= 0 {
		l.MaxExpanded = DefaultMaxExpanded
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = DefaultRatioFloor
	}
	return l
}

// RecordError is one record that could not be read: too large, not valid UTF-8, not a
// CloudTrail record. The Reader goes on with the next record.
type RecordError struct {
	Source string // the input's name
	Index  int    // 1-based position of the record in the input
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%s: record %d: %v", e.Source, e.Index, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Reader reads CloudTrail records one at a time from any of the forms people feed kmsfix: a
// bare record, an EventBridge envelope, a log file ({"Records": [...]}), `aws cloudtrail
// lookup-events` output ({"Events": [...]}), a JSON array of any of them, several of them
// concatenated (JSON lines, pretty-printed), gzip-compressed or not, UTF-8 (with or without
// a byte-order mark) or UTF-16. Each record is returned as soon as its last byte is read, so
// a stdin that stays open yields each record as it arrives. Memory is bounded by
// Limits.MaxRecord whatever the size of the input.
type Reader struct {
	source string
	lim    Limits
	src    io.Reader
	lex    *lexer
	rec    capture
	key    capture

	st       readState
	events   bool // the array being read is lookup-events' Events
	inObject bool // the array is a member of a top-level object (a log file)
	first    bool // no element of the array was read yet
	n        int  // records started
	values   int  // top-level values started
	done     bool
	recStart int64 // input offset of the top-level record being read
	skipLine bool  // skip to the next line that starts with '{' before reading on
}

type readState int

const (
	stTop   readState = iota // between top-level values
	stArray                  // inside an array of records or lookup-events entries
	stRest                   // in a log file's object, after its Records array
)

// NewReader reads r; source names it in errors and in Item.Source ("name#3").
func NewReader(r io.Reader, source string, lim Limits) *Reader {
	lim = lim.withDefaults()
	return &Reader{source: source, lim: lim, src: r,
		rec: capture{max: lim.MaxRecord}, key: capture{max: 64}}
}

// Next returns the next record. At the end of the input it returns io.EOF. A *RecordError
// is about one record: call Next again for the next one. Any other error ends the input
// (grammar error, truncated input, read or decompression error) and names the record and
// byte offset; Next then returns io.EOF.
func (r *Reader) Next() (Item, error) {
	if r.done {
		return Item{}, io.EOF
	}
	if r.lex == nil {
		in, err := openInput(r.src, r.lim)
		if err != nil {
			return r.fail(fmt.Errorf("%s: %w", r.source, err))
		}
		r.lex = newLexer(in, 64<<10, r.lim.MaxDepth)
	}
	lx := r.lex
	for {
		if r.skipLine {
			r.skipLine = false
			lx.skipToLine()
		}
		c, ok := lx.peek()
		switch r.st {
		case stTop:
			if !ok {
				if lx.rerr != nil && lx.rerr != io.EOF {
					return r.fail(fmt.Errorf("%s: byte %d: %w", r.source, lx.offset(), lx.rerr))
				}
				if r.values == 0 {
					return r.fail(fmt.Errorf("%s: no JSON value in input", r.source))
				}
				r.done = true
				return Item{}, io.EOF
			}
			r.values++
			switch c {
			case '{':
				it, err, emit := r.object()
				if emit || err != nil {
					return it, err
				}
			case '[':
				lx.pos++
				r.st, r.events, r.inObject, r.first = stArray, false, false, true
			default:
				// Not a record: skipped to the next line that starts with '{'.
				err := fmt.Errorf("byte %d: %s is not a JSON object; reading goes on at the next line that starts with '{'", lx.offset(), describeByte(c))
				r.skipLine = true
				r.n++
				return Item{}, &RecordError{Source: r.source, Index: r.n, Err: err}
			}
		case stArray:
			if !ok {
				return r.fail(r.errAt(r.n+1, lx.eof()))
			}
			if c == ']' {
				lx.pos++
				r.st = stTop
				if r.inObject {
					r.st = stRest
				}
				continue
			}
			if !r.first {
				if c != ',' {
					return r.fail(r.errAt(r.n+1, lx.errorf("unexpected %q after a record", c)))
				}
				lx.pos++
				if _, ok := lx.peek(); !ok {
					return r.fail(r.errAt(r.n+1, lx.eof()))
				}
			}
			r.first = false
			return r.element()
		case stRest:
			if !ok {
				return r.fail(r.errAt(r.n+1, lx.eof()))
			}
			if c == '}' {
				lx.pos++
				r.st = stTop
				continue
			}
			if c != ',' {
				return r.fail(r.errAt(r.n+1, lx.errorf("unexpected %q after the Records array", c)))
			}
			lx.pos++
			if n, ok := lx.peek(); !ok {
				return r.fail(r.errAt(r.n+1, lx.eof()))
			} else if n != '"' {
				return r.fail(r.errAt(r.n+1, lx.errorf("unexpected %q where an object key is expected", n)))
			}
			if err := lx.memberKey(); err != nil {
				return r.fail(r.errAt(r.n+1, err))
			}
			if err := lx.value(); err != nil {
				return r.fail(r.errAt(r.n+1, err))
			}
		}
	}
}

// bad answers for a top-level record that breaks the grammar: a *RecordError when reading can
// go on at a later line (resync), else the error that ends the input.
func (r *Reader) bad(err error) (Item, error, bool) {
	r.n++
	lx := r.lex
	var syn *syntaxError
	if errors.As(err, &syn) || errors.Is(err, errEOF) {
		lx.flush()
		lx.capt, lx.keyCapt = nil, nil
		// The next line starting with '{' inside what was read of this record, if any: a
		// truncated JSON line swallowed the lines after it. Else the next one still to read.
		if i := bytes.Index(r.rec.b, []byte("\n{")); i >= 0 && !r.rec.over {
			lx.unread(r.rec.b[i+1:], r.recStart+int64(i+1))
		} else if errors.Is(err, errEOF) {
			it, err := r.fail(r.jsonErr(err))
			return it, err, true
		} else {
			r.skipLine = true
		}
		r.st = stTop
		return Item{}, &RecordError{Source: r.source, Index: r.n,
			Err: fmt.Errorf("%s; reading goes on at the next line that starts with '{'", r.describe(err))}, true
	}
	it, err := r.fail(r.jsonErr(err))
	return it, err, true
}

// describe is jsonErr's wording without the source and index (a RecordError adds them).
func (r *Reader) describe(err error) string {
	if errors.Is(err, errEOF) {
		return fmt.Sprintf("input ends inside a JSON value (byte %d)", r.lex.offset())
	}
	return err.Error()
}

func (r *Reader) fail(err error) (Item, error) {
	r.done = true
	r.lex = nil
	return Item{}, err
}

// element reads one element of an array of records (the lexer is at its first byte).
func (r *Reader) element() (Item, error) {
	r.n++
	start := r.lex.offset()
	r.lex.startCapture(&r.rec)
	err := r.lex.value()
	r.lex.endCapture()
	if err != nil {
		return r.fail(r.jsonErr(err))
	}
	return r.record(start, r.events)
}

// object reads a top-level object (the lexer is at its '{'): a log file when it has a
// Records array, lookup-events output when it has an Events array, else one record. emit
// says whether the item (or a *RecordError) is a record; when it is not, the Reader is now
// inside the array.
func (r *Reader) object() (it Item, err error, emit bool) {
	lx := r.lex
	start := lx.offset()
	lx.startCapture(&r.rec)
	defer func() {
		lx.capt, lx.keyCapt = nil, nil
	}()
	// A record that breaks the grammar is skipped when the input is line-oriented (JSON
	// lines, concatenated pretty-printed values): reading goes on at the next line that
	// starts with '{' (see resync).
	r.recStart = start
	lx.pos++
	for first := true; ; first = false {
		c, ok := lx.peek()
		if !ok {
			return r.bad(lx.eof())
		}
		if c == '}' {
			lx.pos++
			break
		}
		if !first {
			if c != ',' {
				return r.bad(lx.errorf("unexpected %q after an object member", c))
			}
			lx.pos++
			c, ok = lx.peek()
			if !ok {
				return r.bad(lx.eof())
			}
		}
		if c != '"' {
			return r.bad(lx.errorf("unexpected %q where an object key is expected", c))
		}
		lx.flush()
		r.key.reset()
		lx.keyCapt = &r.key
		err := lx.str()
		lx.flush()
		lx.keyCapt = nil
		if err == nil {
			err = lx.expect(':', "after an object key:")
		}
		if err != nil {
			return r.bad(err)
		}
		if key := string(r.key.b); !r.key.over && (key == `"Records"` || key == `"Events"`) {
			v, ok := lx.peek()
			if ok && v == '[' {
				lx.pos++
				lx.endCapture()
				r.st, r.events, r.inObject, r.first = stArray, key == `"Events"`, true, true
				return Item{}, nil, false
			}
			desc := "missing"
			if ok {
				desc = describeByte(v)
			}
			it, err = r.fail(fmt.Errorf("%s: value %d (byte %d): %s is %s, not an array", r.source, r.values, lx.offset(), key[1:len(key)-1], desc))
			return it, err, true
		}
		if err := lx.value(); err != nil {
			return r.bad(err)
		}
	}
	lx.endCapture()
	r.n++
	it, err = r.record(start, false)
	return it, err, true
}

// record turns the captured bytes into an item; start is their input offset. entry says they
// are a lookup-events entry, whose CloudTrailEvent string holds the record.
func (r *Reader) record(start int64, entry bool) (Item, error) {
	recErr := func(err error) (Item, error) {
		return Item{}, &RecordError{Source: r.source, Index: r.n, Err: err}
	}
	if r.rec.over {
		return recErr(fmt.Errorf("%d bytes, more than the %d-byte record limit: skipped", r.rec.size, r.lim.MaxRecord))
	}
	raw := r.rec.b
	if i := invalidUTF8(raw); i >= 0 {
		return recErr(fmt.Errorf("invalid UTF-8 at byte %d", start+int64(i)))
	}
	valid := true // the lexer checked raw's grammar
	if entry {
		var ev struct{ CloudTrailEvent *string }
		if err := json.Unmarshal(raw, &ev); err != nil {
			return recErr(fmt.Errorf("lookup-events entry: %w", describeJSONErr(err, "")))
		}
		if ev.CloudTrailEvent == nil {
			return recErr(errors.New("lookup-events entry without CloudTrailEvent"))
		}
		raw, valid = []byte(*ev.CloudTrailEvent), false
	}
	it, err := parse(raw, true, valid)
	if err != nil {
		return recErr(err)
	}
	it.Source = r.source + "#" + strconv.Itoa(r.n)
	return it, nil
}

// invalidUTF8 returns the offset of the first byte of b that is not valid UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		c, size := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// jsonErr names the source, the record being read and the byte offset of an error that ends
// the input.
func (r *Reader) jsonErr(err error) error { return r.errAt(r.n, err) }

// errAt is jsonErr for record index (between records: the next one).
func (r *Reader) errAt(index int, err error) error {
	index = max(index, 1)
	var syn *syntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%s: record %d: %w", r.source, index, err)
	case errors.Is(err, errEOF):
		return fmt.Errorf("%s: record %d: input ends inside a JSON value (byte %d): %w", r.source, index, r.lex.offset(), io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%s: record %d (byte %d): %w", r.source, index, r.lex.offset(), err)
}

func describeByte(c byte) string {
	switch {
	case c == '"':
		return "a string"
	case c == '[':
		return "'['"
	case c == '{':
		return "'{'"
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("%q", c)
}

// ReadAll reads every record of r (see Reader). Records that could not be read are
// skipped; their errors, and the error that ended the input if any, are returned joined,
// with every item read.
func ReadAll(r io.Reader, source string) ([]Item, error) {
	rd := NewReader(r, source, Limits{})
	var items []Item
	var errs []error
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, it)
	}
	return items, errors.Join(errs...)
}

// openInput undoes the transfer encodings: gzip (detected by its magic bytes, guarded by
// lim), then the text encoding (see decodeText).
func openInput(src io.Reader, lim Limits) (io.Reader, error) {
	counted := &countingReader{r: src}
	br := bufio.NewReaderSize(counted, 64<<10)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		in = bufio.NewReaderSize(&gzipGuard{r: gz, in: counted, lim: lim}, 4096)
	}
	return decodeText(in.(*bufio.Reader))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ErrDecompressionLimit is wrapped by the error of a gzip input that expands past Limits.
var ErrDecompressionLimit = errors.New("decompression limit")

// gzipGuard stops a gzip stream that expands too far or too much.
type gzipGuard struct {
	r   io.Reader
	in  *countingReader // compressed bytes read so far
	out int64
	lim Limits
}

func (g *gzipGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.out += int64(n)
	switch {
	case g.out > g.lim.MaxExpanded:
		n = max(0, n-int(g.out-g.lim.MaxExpanded)) // nothing past the limit is read
		return n, fmt.Errorf("gzip: expands past %d bytes: %w", g.lim.MaxExpanded, ErrDecompressionLimit)
	case g.out > g.lim.RatioFloor && g.out > g.lim.MaxRatio*max(g.in.n, 1):
		return n, fmt.Errorf("gzip: %d bytes expand to more than %d (over %d times): %w", g.in.n, g.out, g.lim.MaxRatio, ErrDecompressionLimit)
	case err != nil && err != io.EOF:
		return n, fmt.Errorf("gzip: %w", err)
	}
	return n, err
}
