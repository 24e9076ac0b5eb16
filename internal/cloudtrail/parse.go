package cloudtrail

import (
	"errors"
	"io"
)

// Parse reads one JSON value: an EventBridge envelope ("AWS API Call via CloudTrail") or a bare
// CloudTrail record. The error is for input that is not a CloudTrail record at all.
func Parse(raw []byte) (Item, error) { return Item{}, errors.New("cloudtrail.Parse: being written") }

// ReadAll reads a stream (gzip detected) of one or more JSON values, each an envelope, a bare
// record or a log file ({"Records": [...]}), and returns the items in input order. Items read
// before an error are returned with it; source names the input in errors.
func ReadAll(r io.Reader, source string) ([]Item, error) {
	return nil, errors.New("cloudtrail.ReadAll: being written")
}
