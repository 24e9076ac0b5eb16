package cloudtrail

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ReadAll reads a stream (gzip detected) of one or more JSON values, each an envelope, a bare
// record or a log file ({"Records": [...]}), and returns the items in input order. Items read
// before an error are returned with it; source names the input in errors.
//
// A top-level JSON array of records or envelopes (jq -s output) is read too. Memory stays
// proportional to one record: values are decoded token by token, and a log file's Records
// array element by element.
func ReadAll(r io.Reader, source string) ([]Item, error) {
	br := bufio.NewReader(r)
	var in io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", source, err)
		}
		defer gz.Close()
		in = gz
	}
	rd := &streamReader{dec: json.NewDecoder(in), source: source}
	err := rd.run()
	if err == nil && len(rd.items) == 1 {
		rd.items[0].Source = source // a single record needs no index
	}
	return rd.items, err
}

type streamReader struct {
	dec    *json.Decoder
	source string
	items  []Item
	n      int // records started so far (1-based index of the current one)
	values int // top-level values started so far
}

func (r *streamReader) run() error {
	for {
		tok, err := r.dec.Token()
		if err == io.EOF {
			if r.values == 0 {
				return fmt.Errorf("%s: no JSON value in input", r.source)
			}
			return nil
		}
		if err != nil {
			return r.jsonErr(err)
		}
		r.values++
		switch tok {
		case json.Delim('{'):
			err = r.object()
		case json.Delim('['):
			err = r.array()
		default:
			err = fmt.Errorf("%s: value %d (byte %d): %s is not a JSON object", r.source, r.values, r.dec.InputOffset(), describe(tok))
		}
		if err != nil {
			return err
		}
	}
}

// object reads a top-level object whose '{' was consumed: a log file when it has a Records
// array, `aws cloudtrail lookup-events` output when it has an Events array, else one record
// or envelope, rebuilt from its members and parsed.
func (r *streamReader) object() error {
	var buf []byte
	logFile := false
	for r.dec.More() {
		tok, err := r.dec.Token()
		if err != nil {
			return r.jsonErr(err)
		}
		key, _ := tok.(string)
		if (key == "Records" || key == "Events") && !logFile {
			open, err := r.dec.Token()
			if err != nil {
				return r.jsonErr(err)
			}
			if open != json.Delim('[') {
				return fmt.Errorf("%s: value %d (byte %d): %s is %s, not an array", r.source, r.values, r.dec.InputOffset(), key, describe(open))
			}
			read := r.array
			if key == "Events" {
				read = r.lookupEvents
			}
			if err := read(); err != nil {
				return err
			}
			logFile, buf = true, nil
			continue
		}
		var raw json.RawMessage
		if err := r.dec.Decode(&raw); err != nil {
			return r.jsonErr(err)
		}
		if logFile {
			continue // other members of a log file are not records
		}
		if buf == nil {
			buf = append(make([]byte, 0, 4096), '{')
		} else {
			buf = append(buf, ',')
		}
		k, _ := json.Marshal(key)
		buf = append(append(append(buf, k...), ':'), raw...)
	}
	if _, err := r.dec.Token(); err != nil { // the closing '}'
		return r.jsonErr(err)
	}
	if logFile {
		return nil
	}
	if buf == nil {
		buf = []byte("{")
	}
	return r.add(append(buf, '}'))
}

// array reads the elements of an array whose '[' was consumed, one record each.
func (r *streamReader) array() error {
	for r.dec.More() {
		var raw json.RawMessage
		if err := r.dec.Decode(&raw); err != nil {
			return r.jsonErr(err)
		}
		if err := r.add(raw); err != nil {
			return err
		}
	}
	if _, err := r.dec.Token(); err != nil { // the closing ']'
		return r.jsonErr(err)
	}
	return nil
}

// lookupEvents reads the Events array of `aws cloudtrail lookup-events` output (its '['
// consumed): each entry holds the record as a JSON string in CloudTrailEvent.
func (r *streamReader) lookupEvents() error {
	for r.dec.More() {
		var ev struct{ CloudTrailEvent *string }
		if err := r.dec.Decode(&ev); err != nil {
			return r.jsonErr(err)
		}
		if ev.CloudTrailEvent == nil {
			return fmt.Errorf("%s: record %d: lookup-events entry without CloudTrailEvent", r.source, r.n+1)
		}
		if err := r.add([]byte(*ev.CloudTrailEvent)); err != nil {
			return err
		}
	}
	if _, err := r.dec.Token(); err != nil { // the closing ']'
		return r.jsonErr(err)
	}
	return nil
}

// add parses one record; raw is owned by the reader.
func (r *streamReader) add(raw []byte) error {
	r.n++
	it, err := parse(raw, false)
	if err != nil {
		return fmt.Errorf("%s: record %d: %w", r.source, r.n, err)
	}
	it.Source = r.source + "#" + strconv.Itoa(r.n)
	r.items = append(r.items, it)
	return nil
}

// jsonErr names the source, the record being read and the byte offset of a JSON error.
func (r *streamReader) jsonErr(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("%s: record %d: invalid JSON at byte %d: %w", r.source, r.n+1, syn.Offset, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%s: record %d: input ends inside a JSON value (byte %d): %w", r.source, r.n+1, r.dec.InputOffset(), io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("%s: record %d (byte %d): %w", r.source, r.n+1, r.dec.InputOffset(), err)
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return "'" + v.String() + "'"
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}
