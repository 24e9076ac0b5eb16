package cloudtrail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeText returns the input as UTF-8 without a byte-order mark. JSON text starts with an
// ASCII character, so the first two bytes tell UTF-16 from UTF-8 also without a BOM (RFC 4627
// section 3; Windows PowerShell's `>` writes UTF-16LE with a BOM). UTF-32 is refused. Invalid
// UTF-8 is refused record by record, by the Reader, with its byte offset.
func decodeText(br *bufio.Reader) (io.Reader, error) {
	b, _ := br.Peek(4)
	switch {
	case len(b) >= 4 && (b[0] == 0 && b[1] == 0 && b[2] == 0xfe && b[3] == 0xff ||
		b[0] == 0xff && b[1] == 0xfe && b[2] == 0 && b[3] == 0 ||
		b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] != 0 ||
		b[0] != 0 && b[1] == 0 && b[2] == 0 && b[3] == 0):
		return nil, errors.New("the input is UTF-32: convert it to UTF-8 (iconv -f UTF-32 -t UTF-8)")
	case len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf:
		_, _ = br.Discard(3)
		return br, nil
	case len(b) >= 2 && b[0] == 0xfe && b[1] == 0xff:
		_, _ = br.Discard(2)
		return &utf16Reader{r: br, big: true}, nil
	case len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe:
		_, _ = br.Discard(2)
		return &utf16Reader{r: br}, nil
	case len(b) >= 2 && b[0] == 0 && b[1] != 0:
		return &utf16Reader{r: br, big: true}, nil
	case len(b) >= 2 && b[0] != 0 && b[1] == 0:
		return &utf16Reader{r: br}, nil
	}
	return br, nil
}

// utf16Reader decodes UTF-16 to UTF-8 as it is read. An unpaired surrogate or an odd byte
// count is an error naming the byte offset in the UTF-16 input.
type utf16Reader struct {
	r    *bufio.Reader
	big  bool
	off  int64  // UTF-16 bytes consumed
	pend []byte // encoded bytes not yet returned
	err  error
}

func (u *utf16Reader) unit() (uint16, error) {
	var b [2]byte
	n, err := io.ReadFull(u.r, b[:])
	u.off += int64(n)
	switch {
	case err == io.ErrUnexpectedEOF:
		return 0, fmt.Errorf("UTF-16 input ends inside a character (byte %d)", u.off)
	case err != nil:
		return 0, err
	case u.big:
		return uint16(b[0])<<8 | uint16(b[1]), nil
	}
	return uint16(b[1])<<8 | uint16(b[0]), nil
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(u.pend) > 0 {
			c := copy(p[n:], u.pend)
			u.pend, n = u.pend[c:], n+c
			continue
		}
		if u.err != nil {
			break
		}
		// Return what is decoded rather than wait for input that is not there yet.
		if n > 0 && u.r.Buffered() < 2 {
			break
		}
		c, err := u.unit()
		if err != nil {
			u.err = err
			break
		}
		r := rune(c)
		if utf16.IsSurrogate(r) {
			c2, err := u.unit()
			if err == nil {
				r = utf16.DecodeRune(r, rune(c2))
			}
			if err != nil || r == utf8.RuneError {
				u.err = fmt.Errorf("invalid UTF-16 at byte %d: unpaired surrogate", u.off-2)
				break
			}
		}
		u.pend = utf8.AppendRune(u.pend[:0], r)
	}
	if n > 0 {
		return n, nil
	}
	return 0, u.err
}
