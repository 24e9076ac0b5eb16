package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/kmsfix/kmsfix/internal/quote"
)

const kmsSource = "kms.amazonaws.com"

// TrailLister, TrailStatusGetter and SelectorsGetter are the CloudTrail calls of the trail checks.
type TrailLister interface {
	DescribeTrails(ctx context.Context, in *cloudtrail.DescribeTrailsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
}

type TrailStatusGetter interface {
	GetTrailStatus(ctx context.Context, in *cloudtrail.GetTrailStatusInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error)
}

type SelectorsGetter interface {
	GetEventSelectors(ctx context.Context, in *cloudtrail.GetEventSelectorsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
}

// TrailAPI is all three.
type TrailAPI interface {
	TrailLister
	TrailStatusGetter
	SelectorsGetter
}

// TrailInfo is a trail that applies to the Region, with its logging status.
type TrailInfo struct {
	Name, ARN, HomeRegion string
	MultiRegion, Org      bool
	// Logging is nil when the status could not be read (an organization trail seen from a
	// member account).
	Logging   *bool
	StatusErr error
}

// CheckTrailLogging passes when a trail that covers region is logging. It returns the trails
// that apply to the region, for CheckTrailSelectors.
func CheckTrailLogging(ctx context.Context, api interface {
	TrailLister
	TrailStatusGetter
}, region string) (Check, []TrailInfo) {
	c := Check{Name: NameTrailLogging}
	out, err := api.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		return cannotRead(c, "trails", err, "cloudtrail:DescribeTrails"), nil
	}
	var trails []TrailInfo
	for _, t := range out.TrailList {
		home := aws.ToString(t.HomeRegion)
		if home != region && !aws.ToBool(t.IsMultiRegionTrail) {
			continue
		}
		ti := TrailInfo{Name: aws.ToString(t.Name), ARN: aws.ToString(t.TrailARN), HomeRegion: home,
			MultiRegion: aws.ToBool(t.IsMultiRegionTrail), Org: aws.ToBool(t.IsOrganizationTrail)}
		id := ti.ARN
		if id == "" {
			id = ti.Name
		}
		st, err := api.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(id)})
		if err != nil {
			ti.StatusErr = err
		} else {
			ti.Logging = aws.Bool(aws.ToBool(st.IsLogging))
		}
		trails = append(trails, ti)
	}
	var logging, stopped, unknown []string
	for _, t := range trails {
		switch {
		case t.Logging == nil:
			unknown = append(unknown, t.describe())
		case *t.Logging:
			logging = append(logging, t.describe())
		default:
			stopped = append(stopped, t.describe())
		}
	}
	switch {
	case len(logging) > 0:
		c.Status, c.Detail = Pass, "logging: "+strings.Join(logging, ", ")
	case len(trails) == 0:
		c.Status = Fail
		c.Detail = fmt.Sprintf("no trail covers %s: CloudTrail sends events to EventBridge only from a logging trail", region)
		c.Fix = fmt.Sprintf("deploy the stack with context createTrail=true, or create one (the bucket needs the CloudTrail bucket policy):\n"+
			"aws cloudtrail create-trail --region %s --name kmsfix-trail --s3-bucket-name BUCKET --is-multi-region-trail\n"+
			"aws cloudtrail start-logging --region %s --name kmsfix-trail", quote.Shell(region), quote.Shell(region))
	case len(stopped) > 0:
		c.Status = Fail
		c.Detail = "no trail covering " + region + " is logging: " + strings.Join(stopped, ", ") + " stopped"
		var fixes []string
		for _, t := range trails {
			if t.Logging != nil && !*t.Logging {
				fixes = append(fixes, quote.Command("aws", "cloudtrail", "start-logging", "--region", t.HomeRegion, "--name", t.ARN))
			}
		}
		c.Fix = strings.Join(fixes, "\n")
	default:
		c.Status = Warn
		c.Detail = "the status of " + strings.Join(unknown, ", ") + " is not readable from this account: " + firstErr(trails)
		c.Fix = "run `aws cloudtrail get-trail-status --name TRAIL_ARN` in the organization's management account"
	}
	return c, trails
}

func (t TrailInfo) describe() string {
	s := t.Name
	var tags []string
	if t.MultiRegion {
		tags = append(tags, "multi-Region")
	} else {
		tags = append(tags, t.HomeRegion)
	}
	if t.Org {
		tags = append(tags, "organization")
	}
	return s + " (" + strings.Join(tags, ", ") + ")"
}

func firstErr(trails []TrailInfo) string {
	for _, t := range trails {
		if t.StatusErr != nil {
			return errorCode(t.StatusErr)
		}
	}
	return ""
}

// CheckTrailSelectors passes when a logging trail's event selectors record the read-only
// management events of kms.amazonaws.com (Decrypt and GenerateDataKey are such events).
func CheckTrailSelectors(ctx context.Context, api SelectorsGetter, region string, trails []TrailInfo) Check {
	c := Check{Name: NameTrailSelectors}
	var candidates []TrailInfo
	for _, t := range trails {
		if t.Logging == nil || *t.Logging {
			candidates = append(candidates, t)
		}
	}
	if len(candidates) == 0 {
		return skipped(NameTrailSelectors, "no logging trail")
	}
	var problems []string
	var fix string
	unreadable := 0
	for _, t := range candidates {
		out, err := api.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(t.ARN)})
		if err != nil {
			unreadable++
			problems = append(problems, fmt.Sprintf("%s: selectors not readable (%s)", t.Name, errorCode(err)))
			continue
		}
		ok, why := recordsKMSReads(out)
		if ok {
			c.Status, c.Detail = Pass, fmt.Sprintf("%s records read-only management events from %s", t.Name, kmsSource)
			return c
		}
		problems = append(problems, t.Name+": "+why)
		if fix == "" && t.Logging != nil {
			fix = selectorFix(t, out)
		}
	}
	c.Detail = strings.Join(problems, "; ")
	if fix == "" && unreadable == len(candidates) {
		c.Status = Warn
		c.Fix = "read them with `aws cloudtrail get-event-selectors --trail-name TRAIL_ARN` where the trail is managed"
		return c
	}
	c.Status, c.Fix = Fail, fix
	return c
}

// recordsKMSReads says whether the selectors log kms.amazonaws.com read-only management
// events, and if not, why.
func recordsKMSReads(out *cloudtrail.GetEventSelectorsOutput) (bool, string) {
	if len(out.AdvancedEventSelectors) > 0 {
		for _, s := range out.AdvancedEventSelectors {
			if advancedAdmits(s, kmsDecryptProbe) && advancedAdmits(s, kmsGenerateProbe) {
				return true, ""
			}
		}
		return false, "no advanced event selector admits read-only management events from " + kmsSource
	}
	if len(out.EventSelectors) == 0 {
		return false, "no event selectors: the trail logs no management events"
	}
	var reasons []string
	for _, s := range out.EventSelectors {
		switch {
		case s.IncludeManagementEvents != nil && !*s.IncludeManagementEvents:
			continue
		case s.ReadWriteType == cttypes.ReadWriteTypeWriteOnly:
			reasons = append(reasons, "management events are WriteOnly (Decrypt is a read)")
		case slices.Contains(s.ExcludeManagementEventSources, kmsSource):
			reasons = append(reasons, "ExcludeManagementEventSources excludes "+kmsSource)
		default:
			return true, ""
		}
	}
	if len(reasons) == 0 {
		return false, "no event selector includes management events"
	}
	return false, strings.Join(reasons, ", ")
}

var (
	kmsDecryptProbe  = map[string]string{"eventCategory": "Management", "readOnly": "true", "eventSource": kmsSource, "eventName": "Decrypt"}
	kmsGenerateProbe = map[string]string{"eventCategory": "Management", "readOnly": "true", "eventSource": kmsSource, "eventName": "GenerateDataKey"}
)

// advancedAdmits says whether every field selector of s admits the event: the conditions of
// a field selector, and the field selectors of a selector, all hold together.
func advancedAdmits(s cttypes.AdvancedEventSelector, event map[string]string) bool {
	for _, f := range s.FieldSelectors {
		v, known := event[aws.ToString(f.Field)]
		if !known || !fieldAdmits(f, v) {
			return false
		}
	}
	return len(s.FieldSelectors) > 0
}

func fieldAdmits(f cttypes.AdvancedFieldSelector, v string) bool {
	anyOf := func(xs []string, pred func(string) bool) bool { return slices.ContainsFunc(xs, pred) }
	eq := func(x string) bool { return x == v }
	pre := func(x string) bool { return strings.HasPrefix(v, x) }
	suf := func(x string) bool { return strings.HasSuffix(v, x) }
	return (len(f.Equals) == 0 || anyOf(f.Equals, eq)) &&
		(len(f.StartsWith) == 0 || anyOf(f.StartsWith, pre)) &&
		(len(f.EndsWith) == 0 || anyOf(f.EndsWith, suf)) &&
		!anyOf(f.NotEquals, eq) && !anyOf(f.NotStartsWith, pre) && !anyOf(f.NotEndsWith, suf)
}

// The CLI's JSON shapes of selectors, without the SDK's nulls.
type (
	cliSelector struct {
		ReadWriteType                 string            `json:"ReadWriteType"`
		IncludeManagementEvents       bool              `json:"IncludeManagementEvents"`
		DataResources                 []cliDataResource `json:"DataResources,omitempty"`
		ExcludeManagementEventSources []string          `json:"ExcludeManagementEventSources"`
	}
	cliDataResource struct {
		Type   string   `json:"Type"`
		Values []string `json:"Values"`
	}
	cliAdvanced struct {
		Name           string     `json:"Name,omitempty"`
		FieldSelectors []cliField `json:"FieldSelectors"`
	}
	cliField struct {
		Field         string   `json:"Field"`
		Equals        []string `json:"Equals,omitempty"`
		StartsWith    []string `json:"StartsWith,omitempty"`
		EndsWith      []string `json:"EndsWith,omitempty"`
		NotEquals     []string `json:"NotEquals,omitempty"`
		NotStartsWith []string `json:"NotStartsWith,omitempty"`
		NotEndsWith   []string `json:"NotEndsWith,omitempty"`
	}
)

// selectorFix is the put-event-selectors command that keeps the trail's selectors and makes
// its management events include KMS reads.
func selectorFix(t TrailInfo, out *cloudtrail.GetEventSelectorsOutput) string {
	head := quote.Command("aws", "cloudtrail", "put-event-selectors", "--region", t.HomeRegion, "--trail-name", t.ARN)
	note := "\n(put-event-selectors replaces all of the trail's selectors: this is the current list with the fix applied)"
	if len(out.AdvancedEventSelectors) > 0 {
		sels := fixAdvanced(out.AdvancedEventSelectors)
		return head + " --advanced-event-selectors " + quote.Shell(compactJSON(sels)) + note
	}
	var sels []cliSelector
	fixed := false
	for _, s := range out.EventSelectors {
		cs := cliSelector{
			ReadWriteType:                 string(s.ReadWriteType),
			IncludeManagementEvents:       s.IncludeManagementEvents == nil || *s.IncludeManagementEvents,
			ExcludeManagementEventSources: []string{},
		}
		if cs.ReadWriteType == "" {
			cs.ReadWriteType = string(cttypes.ReadWriteTypeAll)
		}
		for _, x := range s.ExcludeManagementEventSources {
			if x != kmsSource || !cs.IncludeManagementEvents {
				cs.ExcludeManagementEventSources = append(cs.ExcludeManagementEventSources, x)
			}
		}
		for _, d := range s.DataResources {
			cs.DataResources = append(cs.DataResources, cliDataResource{Type: aws.ToString(d.Type), Values: d.Values})
		}
		if cs.IncludeManagementEvents && !fixed {
			cs.ReadWriteType = string(cttypes.ReadWriteTypeAll)
			fixed = true
		}
		sels = append(sels, cs)
	}
	if !fixed {
		sels = append(sels, cliSelector{ReadWriteType: "All", IncludeManagementEvents: true, ExcludeManagementEventSources: []string{}})
	}
	return head + " --event-selectors " + quote.Shell(compactJSON(sels)) + note
}

// fixAdvanced keeps the selectors, and in the management ones drops the readOnly condition and
// the exclusion of kms.amazonaws.com; with no management selector it adds one.
func fixAdvanced(in []cttypes.AdvancedEventSelector) []cliAdvanced {
	var out []cliAdvanced
	fixed := false
	for _, s := range in {
		cs := cliAdvanced{Name: aws.ToString(s.Name)}
		mgmt := false
		for _, f := range s.FieldSelectors {
			if aws.ToString(f.Field) == "eventCategory" && slices.Contains(f.Equals, "Management") {
				mgmt = true
			}
		}
		for _, f := range s.FieldSelectors {
			cf := cliField{Field: aws.ToString(f.Field), Equals: f.Equals, StartsWith: f.StartsWith, EndsWith: f.EndsWith,
				NotEquals: f.NotEquals, NotStartsWith: f.NotStartsWith, NotEndsWith: f.NotEndsWith}
			if mgmt {
				switch cf.Field {
				case "readOnly":
					continue
				case "eventSource":
					cf.NotEquals = slices.DeleteFunc(slices.Clone(cf.NotEquals), func(x string) bool { return x == kmsSource })
					if len(cf.Equals) > 0 && !slices.Contains(cf.Equals, kmsSource) {
						cf.Equals = append(slices.Clone(cf.Equals), kmsSource)
					}
					if len(cf.Equals)+len(cf.NotEquals)+len(cf.StartsWith)+len(cf.EndsWith)+len(cf.NotStartsWith)+len(cf.NotEndsWith) == 0 {
						continue
					}
				}
			}
			cs.FieldSelectors = append(cs.FieldSelectors, cf)
		}
		fixed = fixed || mgmt
		out = append(out, cs)
	}
	if !fixed {
		out = append(out, cliAdvanced{Name: "Management events", FieldSelectors: []cliField{{Field: "eventCategory", Equals: []string{"Management"}}}})
	}
	return out
}

// cannotRead is a failed check because the doctor could not read what it checks: the gate
// cannot vouch for delivery.
func cannotRead(c Check, what string, err error, actions ...string) Check {
	c.Status = Fail
	c.Detail = fmt.Sprintf("could not read the %s: %v", what, err)
	c.Fix = "give the identity running the doctor the read-only permission " + strings.Join(actions, ", ") + ", then rerun"
	return c
}

// errorCode is the AWS error code of err, or its text.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}
