package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Fingerprint identifies a finding for deduplication (notify), grouping (scan), the audit
// record (apply) and the cross-account request id (crossaccount): the same principal denied the same
// actions on the same key and bucket for the same reason. The object is left out on purpose:
// a batch job failing on ten thousand objects of one bucket is one finding. A report that
// already carries a fingerprint keeps it.
func Fingerprint(r Report) string {
	if r.Fingerprint != "" {
		return r.Fingerprint
	}
	return FingerprintOf(r.Principal, r.Key, r.Actions, string(r.Diagnosis), r.Bucket)
}

// FingerprintOf is the fingerprint of a finding given by its parts.
func FingerprintOf(principal, key string, actions []string, diagnosis, bucket string) string {
	actions = slices.Clone(actions)
	slices.Sort(actions)
	actions = slices.Compact(actions)
	h := sha256.New()
	// Version prefix and NUL separators: no field can run into the next.
	for _, part := range []string{"v1", principal, key, strings.Join(actions, ","), diagnosis, bucket} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
