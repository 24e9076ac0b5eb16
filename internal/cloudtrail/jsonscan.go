package cloudtrail

import "bytes"

// memberValue returns the bytes of the value of member name (matched as encoding/json does:
// case-insensitively, the last one wins) in obj, a JSON object that json.Unmarshal has already
// accepted; nil when there is none. ok is false when a key is written with escapes, which this
// quick scan does not decode: the caller then asks encoding/json.
func memberValue(obj []byte, name string) (val []byte, ok bool) {
	var v [1][]byte
	if !memberValues(obj, []string{name}, v[:]) {
		return nil, false
	}
	return v[0], true
}

// memberValues is memberValue for several names in one pass: vals[i] gets the value of
// names[i] (nil when absent). It returns false where memberValue would.
func memberValues(obj []byte, names []string, vals [][]byte) bool {
	for i := range vals {
		vals[i] = nil
	}
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i++
	for {
		i = skipWS(obj, i)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case '}':
			return true
		case ',':
			i++
			continue
		case '"':
		default:
			return false
		}
		kEnd := stringEnd(obj, i)
		if kEnd < 0 {
			return false
		}
		key := obj[i+1 : kEnd-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		i = skipWS(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipWS(obj, i+1)
		end := valueEnd(obj, i)
		if end < 0 {
			return false
		}
		for k, name := range names {
			if len(key) == len(name) && bytes.EqualFold(key, []byte(name)) {
				vals[k] = obj[i:end]
			}
		}
		i = end
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset after the JSON string that starts at b[i] ('"'), or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); {
		switch b[j] {
		case '\\':
			j += 2
		case '"':
			return j + 1
		default:
			j++
		}
	}
	return -1
}

// valueEnd returns the offset after the JSON value that starts at b[i], or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
