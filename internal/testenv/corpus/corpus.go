package corpus

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Record is one CloudTrail record of a generated corpus.
type Record struct {
	ID     string
	Name   string // eventName
	Source string // eventSource
	Time   time.Time
	JSON   []byte // the bare CloudTrail record
	// Group is the index in Corpus.Groups of the S3 denial this record is, or -1.
	Group int
}

// DenialGroup is the ground truth for one finding: every S3 KMS denial of the same principal,
// key, bucket and action, all with the same error, so they share one diagnosis.
type DenialGroup struct {
	Principal string // the role ARN (with its path), never the session ARN
	Key       string
	Bucket    string
	Action    string // "kms:Decrypt"
	ErrorCode string
	Message   string // errorMessage template; %s is the session ARN
	BucketKey bool   // the encryption context is the bucket ARN
	Count     int
	First     time.Time
	Last      time.Time
}

// Corpus is a generated day of KMS activity, oldest record first.
type Corpus struct {
	Records []Record
	Groups  []DenialGroup
	// Counts of each kind of record.
	Successes, OtherDenials, S3Denials, NonKMS int
}

// Options size a corpus; zero values take the defaults in brackets.
type Options struct {
	End       time.Time     // the newest record is before End [2026-11-28T00:00:00Z]
	Span      time.Duration // records spread over [End-Span, End) [24h]
	Successes int           // successful KMS calls [3000]
	Others    int           // KMS denials not made by S3 for a principal [120]
	Groups    int           // distinct S3 denial findings [36]
	MaxCount  int           // each finding repeats 1..MaxCount times [20]
	NonKMS    int           // records of other services (only in log files) [0]
	Seed      uint64
}

// Account and Region are where the generated records happen (the doctor fake plays them too).
const (
	Account      = "111122223333"
	otherAccount = "444455556666"
	Region       = "us-east-1"
)

// KMSDay generates a deterministic day of mixed KMS events: successful Decrypt /
// GenerateDataKey / Encrypt calls (from S3 and direct), KMS denials that S3 did not make for a
// principal (direct SDK calls, an AWS service acting as itself), and S3 denials spread over
// opts.Groups findings whose counts and first/last times are in Groups.
func KMSDay(opts Options) *Corpus {
	if opts.End.IsZero() {
		opts.End = time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	}
	if opts.Span == 0 {
		opts.Span = 24 * time.Hour
	}
	if opts.Successes == 0 {
		opts.Successes = 3000
	}
	if opts.Others == 0 {
		opts.Others = 120
	}
	if opts.Groups == 0 {
		opts.Groups = 36
	}
	if opts.MaxCount == 0 {
		opts.MaxCount = 20
	}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6b6d73666978))
	g := &gen{rng: rng, start: opts.End.Add(-opts.Span), span: opts.Span}
	c := &Corpus{}

	roles := []string{
		"arn:aws:iam::" + Account + ":role/app-reader",
		"arn:aws:iam::" + Account + ":role/service-role/ingest-writer",
		"arn:aws:iam::" + Account + ":role/etl/nightly-batch",
		"arn:aws:iam::" + Account + ":role/analytics",
		"arn:aws:iam::" + Account + ":role/report-builder",
		"arn:aws:iam::" + Account + ":role/backup-agent",
	}
	keys := []string{
		"arn:aws:kms:us-east-1:" + Account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:us-east-1:" + Account + ":key/0987dcba-09fe-87dc-65ba-ab0987654321",
		"arn:aws:kms:us-east-1:" + Account + ":key/11112222-3333-4444-5555-666677778888",
		"arn:aws:kms:us-east-1:" + otherAccount + ":key/aaaabbbb-cccc-dddd-eeee-ffff00001111",
	}
	buckets := []string{"amzn-s3-demo-reports", "amzn-s3-demo-ingest", "amzn-s3-demo-archive"}

	// Every (role, key, bucket) combination is distinct; take opts.Groups of them.
	type combo struct{ r, k, b int }
	var combos []combo
	for r := range roles {
		for k := range keys {
			for b := range buckets {
				combos = append(combos, combo{r, k, b})
			}
		}
	}
	rng.Shuffle(len(combos), func(i, j int) { combos[i], combos[j] = combos[j], combos[i] })
	if opts.Groups > len(combos) {
		opts.Groups = len(combos)
	}
	for i, cb := range combos[:opts.Groups] {
		grp := DenialGroup{Principal: roles[cb.r], Key: keys[cb.k], Bucket: buckets[cb.b], BucketKey: i%3 == 0}
		grp.Action = []string{"kms:Decrypt", "kms:GenerateDataKey"}[i%2]
		grp.ErrorCode, grp.Message = denialError(grp.Key, grp.Action, i)
		grp.Count = 1 + rng.IntN(opts.MaxCount)
		c.Groups = append(c.Groups, grp)
	}

	for range opts.Successes {
		c.Records = append(c.Records, g.success(roles, keys, buckets))
		c.Successes++
	}
	for range opts.Others {
		c.Records = append(c.Records, g.otherDenial(roles, keys, buckets))
		c.OtherDenials++
	}
	for gi := range c.Groups {
		grp := &c.Groups[gi]
		for range grp.Count {
			rec := g.s3Denial(grp)
			rec.Group = gi
			if grp.First.IsZero() || rec.Time.Before(grp.First) {
				grp.First = rec.Time
			}
			if rec.Time.After(grp.Last) {
				grp.Last = rec.Time
			}
			c.Records = append(c.Records, rec)
			c.S3Denials++
		}
	}
	for range opts.NonKMS {
		c.Records = append(c.Records, g.nonKMS())
		c.NonKMS++
	}
	slices.SortStableFunc(c.Records, func(a, b Record) int { return a.Time.Compare(b.Time) })
	return c
}

// denialError picks the error of group i: most are policy denials, a few are key-state ones.
func denialError(key, action string, i int) (code, message string) {
	switch i % 6 {
	case 0, 1:
		return "AccessDenied", "User: %s is not authorized to perform: " + action + " on resource: " + key +
			" because no identity-based policy allows the " + action + " action"
	case 2:
		return "AccessDenied", "User: %s is not authorized to perform: " + action + " on resource: " + key +
			" because no resource-based policy allows the " + action + " action"
	case 3:
		return "AccessDenied", "User: %s is not authorized to perform: " + action + " on resource: " + key +
			" with an explicit deny in a service control policy"
	case 4:
		return "AccessDenied", "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
	default:
		return "DisabledException", key + " is disabled."
	}
}

type gen struct {
	rng   *rand.Rand
	start time.Time
	span  time.Duration
}

func (g *gen) when() time.Time {
	return g.start.Add(time.Duration(g.rng.Int64N(int64(g.span)))).Truncate(time.Second)
}

func (g *gen) uuid() string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func pick[T any](g *gen, xs []T) T { return xs[g.rng.IntN(len(xs))] }

// roleIdentity is an assumed-role userIdentity for roleARN with a session name.
func roleIdentity(roleARN, session string, viaS3 bool) map[string]any {
	name := roleARN[lastSlash(roleARN)+1:]
	id := map[string]any{
		"type":        "AssumedRole",
		"principalId": "AROAEXAMPLEID:" + session,
		"arn":         "arn:aws:sts::" + Account + ":assumed-role/" + name + "/" + session,
		"accountId":   Account,
		"accessKeyId": "ASIAEXAMPLEKEY",
		"sessionContext": map[string]any{
			"sessionIssuer": map[string]any{
				"type": "Role", "principalId": "AROAEXAMPLEID", "arn": roleARN,
				"accountId": Account, "userName": name,
			},
			"attributes": map[string]any{"creationDate": "2026-11-27T00:00:00Z", "mfaAuthenticated": "false"},
		},
	}
	if viaS3 {
		id["invokedBy"] = "AWS Internal"
	}
	return id
}

func lastSlash(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return -1
}

func (g *gen) record(t time.Time, name string, identity map[string]any, key string, params map[string]any, errCode, errMsg string, viaS3 bool) Record {
	id := g.uuid()
	rec := map[string]any{
		"eventVersion":       "1.11",
		"userIdentity":       identity,
		"eventTime":          t.UTC().Format(time.RFC3339),
		"eventSource":        "kms.amazonaws.com",
		"eventName":          name,
		"awsRegion":          Region,
		"sourceIPAddress":    "198.51.100.7",
		"userAgent":          "aws-sdk-go-v2/1.48.0",
		"requestParameters":  params,
		"responseElements":   nil,
		"requestID":          g.uuid(),
		"eventID":            id,
		"readOnly":           name != "Encrypt",
		"resources":          []map[string]any{{"accountId": arnAccount(key), "type": "AWS::KMS::Key", "ARN": key}},
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": Account,
		"eventCategory":      "Management",
	}
	if viaS3 {
		rec["sourceIPAddress"], rec["userAgent"] = "AWS Internal", "AWS Internal"
	}
	if errCode != "" {
		rec["errorCode"], rec["errorMessage"] = errCode, errMsg
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return Record{ID: id, Name: name, Source: "kms.amazonaws.com", Time: t, JSON: raw, Group: -1}
}

func arnAccount(arn string) string {
	// arn:aws:kms:region:ACCOUNT:key/...
	n := 0
	for i := range arn {
		if arn[i] == ':' {
			n++
			if n == 4 {
				return arn[i+1 : i+13]
			}
		}
	}
	return ""
}

func s3Params(keyARN, bucket, object string, bucketKey bool, name string) map[string]any {
	ctx := "arn:aws:s3:::" + bucket + "/" + object
	if bucketKey {
		ctx = "arn:aws:s3:::" + bucket
	}
	p := map[string]any{"encryptionContext": map[string]any{"aws:s3:arn": ctx}}
	if name == "Decrypt" {
		p["encryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
	} else {
		p["keyId"], p["keySpec"] = keyARN, "AES_256"
	}
	return p
}

func (g *gen) success(roles, keys, buckets []string) Record {
	name := pick(g, []string{"Decrypt", "Decrypt", "Decrypt", "GenerateDataKey", "GenerateDataKey", "Encrypt"})
	key := pick(g, keys)
	viaS3 := name != "Encrypt" && g.rng.IntN(3) > 0
	session := fmt.Sprintf("s-%d", g.rng.IntN(50))
	var params map[string]any
	if viaS3 {
		params = s3Params(key, pick(g, buckets), fmt.Sprintf("data/part-%05d.parquet", g.rng.IntN(10000)), g.rng.IntN(2) == 0, name)
	} else {
		params = map[string]any{"keyId": key, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
	}
	return g.record(g.when(), name, roleIdentity(pick(g, roles), session, viaS3), key, params, "", "", viaS3)
}

// otherDenial is a refused KMS call that S3 did not make for a principal: a direct SDK call
// (no aws:s3:arn context), or CloudTrail writing its own SSE-KMS log files (AWSService).
func (g *gen) otherDenial(roles, keys, buckets []string) Record {
	key := pick(g, keys)
	if g.rng.IntN(4) == 0 {
		identity := map[string]any{"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
		params := s3Params(key, pick(g, buckets), "AWSLogs/"+Account+"/CloudTrail/x.json.gz", false, "GenerateDataKey")
		return g.record(g.when(), "GenerateDataKey", identity, key, params, "AccessDenied",
			"cloudtrail.amazonaws.com is not authorized to perform: kms:GenerateDataKey on resource: "+key, false)
	}
	role := pick(g, roles)
	id := roleIdentity(role, "direct", false)
	msg := "User: " + id["arn"].(string) + " is not authorized to perform: kms:Decrypt on resource: " + key +
		" because no identity-based policy allows the kms:Decrypt action"
	return g.record(g.when(), "Decrypt", id, key, map[string]any{"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}, "AccessDenied", msg, false)
}

func (g *gen) s3Denial(grp *DenialGroup) Record {
	name := grp.Action[len("kms:"):]
	session := fmt.Sprintf("s-%d", g.rng.IntN(50))
	id := roleIdentity(grp.Principal, session, true)
	msg := grp.Message
	if strings.Contains(msg, "%s") {
		msg = fmt.Sprintf(msg, id["arn"])
	}
	params := s3Params(grp.Key, grp.Bucket, fmt.Sprintf("in/%04d.csv", g.rng.IntN(1000)), grp.BucketKey, name)
	return g.record(g.when(), name, id, grp.Key, params, grp.ErrorCode, msg, true)
}

// nonKMS is a record of another service, as a trail's log files hold them.
func (g *gen) nonKMS() Record {
	t := g.when()
	id := g.uuid()
	raw, _ := json.Marshal(map[string]any{
		"eventVersion": "1.11", "eventTime": t.Format(time.RFC3339), "eventSource": "s3.amazonaws.com",
		"eventName": "ListBuckets", "awsRegion": Region, "eventID": id, "readOnly": true,
		"userIdentity":       roleIdentity("arn:aws:iam::"+Account+":role/analytics", "console", false),
		"recipientAccountId": Account, "eventType": "AwsApiCall", "managementEvent": true,
		"eventCategory": "Management",
	})
	return Record{ID: id, Name: "ListBuckets", Source: "s3.amazonaws.com", Time: t, JSON: raw, Group: -1}
}

// WriteLogFiles writes records as CloudTrail log files the way a trail stores them in S3:
// AWSLogs/<account>/CloudTrail/<region>/<yyyy>/<mm>/<dd>/<account>_CloudTrail_<region>_<stamp>_<n>.json.gz,
// one gzip file of {"Records": [...]} per hour. It returns the paths written.
func WriteLogFiles(t testing.TB, dir string, records []Record) []string {
	t.Helper()
	byHour := map[time.Time][]json.RawMessage{}
	for _, rec := range records {
		h := rec.Time.UTC().Truncate(time.Hour)
		byHour[h] = append(byHour[h], rec.JSON)
	}
	var paths []string
	for h, recs := range byHour {
		sub := filepath.Join(dir, "AWSLogs", Account, "CloudTrail", Region, h.Format("2006/01/02"))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%s_CloudTrail_%s_%s_%x.json.gz", Account, Region, h.Format("20060102T1504Z"), hash(h.String()))
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if err := json.NewEncoder(zw).Encode(map[string]any{"Records": recs}); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(sub, name)
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	slices.Sort(paths)
	return paths
}

// hash is FNV-1a, for stable file names.
func hash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}
