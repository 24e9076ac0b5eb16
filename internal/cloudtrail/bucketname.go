package cloudtrail

import (
	"net/netip"
	"strings"
)

// Bucket names are validated before anything (a patch's condition, an advice command) is
// built from them: a name S3 would never have created is a forged or corrupted record, and
// a wildcard or a shell character must never reach a policy or a command line.
//
// Rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
// (general purpose buckets: 3-63 characters, lowercase letters, digits, dots and hyphens,
// beginning and ending with a letter or digit, no two adjacent dots, not an IP address, not
// ending with the suffixes S3 reserves for access point aliases and other bucket types).
// Legacy names: "Before March 1, 2018, buckets created in the US East (N. Virginia) Region
// could have names that were up to 255 characters long and included uppercase letters and
// underscores" (same page), so they are accepted in us-east-1 only.
// Directory buckets: https://docs.aws.amazon.com/AmazonS3/latest/userguide/directory-bucket-naming-rules.html
// ("bucket-base-name--zone-id--x-s3"; lowercase letters, digits and hyphens; 3-63 characters
// in all).

// reservedSuffixes end names S3 does not give general purpose buckets.
var reservedSuffixes = []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}

// ValidBucketName reports whether name is a general purpose bucket name S3 accepts; legacy
// names (uppercase, underscores, up to 255 characters) only when region is us-east-1.
func ValidBucketName(name, region string) bool {
	if validModernName(name) {
		return true
	}
	return region == "us-east-1" && validLegacyName(name)
}

func validModernName(name string) bool {
	if len(name) < 3 || len(name) > 63 || !alnumLower(name[0]) || !alnumLower(name[len(name)-1]) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !alnumLower(c) && c != '.' && c != '-' {
			return false
		}
	}
	if strings.Contains(name, "..") {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	for _, s := range reservedSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

func validLegacyName(name string) bool {
	if len(name) < 3 || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !alnumLower(c) && !(c >= 'A' && c <= 'Z') && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return !strings.Contains(name, "..")
}

// ValidDirectoryBucketName reports whether name is a directory bucket name:
// base-name--zone-id--x-s3, lowercase letters, digits and hyphens only.
func ValidDirectoryBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	rest, ok := strings.CutSuffix(name, "--x-s3")
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, "--")
	if i <= 0 {
		return false
	}
	base, zone := rest[:i], rest[i+2:]
	if base == "" || zone == "" || !alnumLower(base[0]) || !alnumLower(base[len(base)-1]) ||
		!alnumLower(zone[0]) || !alnumLower(zone[len(zone)-1]) {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !alnumLower(c) && c != '-' {
			return false
		}
	}
	return true
}

func alnumLower(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
