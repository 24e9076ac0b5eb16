package awsfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/kmsfix/kmsfix/internal/testenv/corpus"
)

// Doctor is one httptest server answering the read-only calls of `kmsfix doctor` for one
// account and Region: CloudTrail (DescribeTrails, GetTrailStatus, GetEventSelectors),
// EventBridge (DescribeEventBus, DescribeRule, ListRules, ListTargetsByRule,
// ListRuleNamesByTarget), SQS
// (GetQueueUrl, GetQueueAttributes), Secrets Manager (DescribeSecret, GetSecretValue), all JSON
// protocols dispatched on X-Amz-Target, and Lambda's REST GetFunction and
// GetFunctionEventInvokeConfig. Point each SDK client (or AWS_ENDPOINT_URL_<SERVICE>) at URL.
// Tests edit the exported state under Lock/Unlock or before the first call.
type Doctor struct {
	URL     string
	Account string
	Region  string

	mu        sync.Mutex
	Trails    []*Trail
	Buses     []*Bus // custom event buses (the default bus always exists)
	Rules     []*Rule
	Functions []*Function
	Queues    []*Queue
	Secrets   []*Secret
	// Fail maps an operation name to the AWS error code it answers with.
	Fail  map[string]string
	calls map[string]int
}

// Trail is a trail; selectors are JSON as the API returns them.
type Trail struct {
	Name, HomeRegion  string
	MultiRegion, Org  bool
	Logging           bool
	EventSelectors    string // JSON array, "" for none
	AdvancedSelectors string // JSON array, "" for none
	StatusDenied      bool   // GetTrailStatus answers AccessDenied (an organization trail seen from a member)
	SelectorsDenied   bool
}

// Rule is an EventBridge rule on a bus.
type Rule struct {
	Name, Bus, State, Pattern, Description string
	Targets                                []Target
}

// Bus is a custom event bus; Policy is its resource policy JSON ("" for none).
type Bus struct{ Name, Policy string }

// Target is a rule target; DeadLetter is an SQS ARN or "", RoleARN the role EventBridge
// assumes or "", Retries and MaxAge the retry policy (both 0: none).
type Target struct {
	ID, ARN, DeadLetter, RoleARN string
	Retries, MaxAge              int
}

// Function is a Lambda function; Role is its execution role ARN ("" for a default one).
type Function struct {
	Name, State, StateReason, Role string
	Env                            map[string]string
	OnFailure                      string // asynchronous invocation failure destination (SQS ARN)
}

// Queue is an SQS queue with message counts.
type Queue struct {
	Name              string
	Visible, InFlight int
}

// Secret is a Secrets Manager secret.
type Secret struct {
	ARN, Value, KMSKey string
	Deleted            bool // scheduled for deletion
	Binary             bool
	ReadDenied         bool // GetSecretValue answers AccessDeniedException
}

// Names and ARNs of the healthy account.
const (
	DoctorRuleName     = "Kmsfix-KmsDenialRule6F2E5C1B-1AB2C3D4E5F6"
	DoctorFunctionName = "Kmsfix-Function76856677-AbCdEf123456"
	DoctorQueueName    = "Kmsfix-DeadLetterQueue9F481546-Q1W2E3R4T5Y6"
	DoctorSecretARN    = "arn:aws:secretsmanager:us-east-1:111122223333:secret:kmsfix/slack-webhook-AbC123"
)

// NewDoctor starts a fake holding an account set up as the stack leaves it, with the
// rule's event pattern given: every doctor check passes until the test breaks something.
func NewDoctor(t testing.TB, rulePattern string) *Doctor {
	t.Helper()
	f := &Doctor{Account: corpus.Account, Region: corpus.Region, Fail: map[string]string{}, calls: map[string]int{}}
	f.Trails = []*Trail{{
		Name: "management-events", HomeRegion: "eu-west-1", MultiRegion: true, Logging: true,
		EventSelectors: `[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]}]`,
	}}
	f.Rules = []*Rule{
		{Name: "Kmsfix-ExpirySweeper1A2B3C4D-ZZZ", Bus: "default", State: "ENABLED", Pattern: "",
			Targets: []Target{{ID: "Target0", ARN: f.FunctionARN(DoctorFunctionName)}}},
		{Name: DoctorRuleName, Bus: "default", State: "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS", Pattern: rulePattern,
			Description: "kmsfix: KMS data-key calls made by S3 for a principal and refused",
			Targets:     []Target{{ID: "Target0", ARN: f.FunctionARN(DoctorFunctionName), DeadLetter: f.QueueARN(DoctorQueueName)}}},
	}
	f.Functions = []*Function{{Name: DoctorFunctionName, State: "Active",
		Env:       map[string]string{"KMSFIX_MODE": "notify", "KMSFIX_SLACK_SECRET_ARN": DoctorSecretARN},
		OnFailure: f.QueueARN(DoctorQueueName)}}
	f.Queues = []*Queue{{Name: DoctorQueueName}}
	f.Secrets = []*Secret{{ARN: DoctorSecretARN, Value: `{"url":"https://hooks.slack.com/services/T000/B000/XXXXXXXX"}`}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Lock and Unlock guard the exported state while the fake may be serving.
func (f *Doctor) Lock()   { f.mu.Lock() }
func (f *Doctor) Unlock() { f.mu.Unlock() }

// Calls is how often an operation was called.
func (f *Doctor) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *Doctor) FunctionARN(name string) string {
	return "arn:aws:lambda:" + f.Region + ":" + f.Account + ":function:" + name
}

func (f *Doctor) QueueARN(name string) string {
	return "arn:aws:sqs:" + f.Region + ":" + f.Account + ":" + name
}

func (f *Doctor) QueueURL(name string) string { return f.URL + "/" + f.Account + "/" + name }

func (f *Doctor) trailARN(t *Trail) string {
	return "arn:aws:cloudtrail:" + t.HomeRegion + ":" + f.Account + ":trail/" + t.Name
}

func (f *Doctor) ruleARN(r *Rule) string {
	if r.Bus != "default" {
		return "arn:aws:events:" + f.Region + ":" + f.Account + ":rule/" + r.Bus + "/" + r.Name
	}
	return "arn:aws:events:" + f.Region + ":" + f.Account + ":rule/" + r.Name
}

// BusARN is the ARN of a bus of this account and Region.
func (f *Doctor) BusARN(name string) string {
	return "arn:aws:events:" + f.Region + ":" + f.Account + ":event-bus/" + name
}

func (f *Doctor) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") || strings.HasPrefix(r.URL.Path, "/2019-09-25/functions/") {
		f.serveLambda(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndexByte(target, '.')+1:]
	f.calls[op]++
	ctype := "application/x-amz-json-1.1"
	if strings.HasPrefix(target, "AmazonSQS.") {
		ctype = "application/x-amz-json-1.0"
	}
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
	if code := f.Fail[op]; code != "" {
		fail(http.StatusBadRequest, code, "injected")
		return
	}
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			fail(http.StatusBadRequest, "SerializationException", err.Error())
			return
		}
	}
	str := func(k string) string { s, _ := in[k].(string); return s }
	reply := func(v any) {
		w.Header().Set("Content-Type", ctype)
		json.NewEncoder(w).Encode(v)
	}

	switch op {
	case "DescribeTrails":
		list := []map[string]any{}
		for _, t := range f.Trails {
			list = append(list, map[string]any{"Name": t.Name, "TrailARN": f.trailARN(t), "HomeRegion": t.HomeRegion,
				"IsMultiRegionTrail": t.MultiRegion, "IsOrganizationTrail": t.Org, "S3BucketName": "trail-bucket"})
		}
		reply(map[string]any{"trailList": list})
	case "GetTrailStatus", "GetEventSelectors":
		key := str("Name") + str("TrailName")
		for _, t := range f.Trails {
			if key != t.Name && key != f.trailARN(t) {
				continue
			}
			if op == "GetTrailStatus" {
				if t.StatusDenied {
					fail(http.StatusBadRequest, "AccessDeniedException", "not authorized")
					return
				}
				reply(map[string]any{"IsLogging": t.Logging})
				return
			}
			if t.SelectorsDenied {
				fail(http.StatusBadRequest, "AccessDeniedException", "not authorized")
				return
			}
			out := map[string]any{"TrailARN": f.trailARN(t)}
			if t.EventSelectors != "" {
				out["EventSelectors"] = json.RawMessage(t.EventSelectors)
			}
			if t.AdvancedSelectors != "" {
				out["AdvancedEventSelectors"] = json.RawMessage(t.AdvancedSelectors)
			}
			reply(out)
			return
		}
		fail(http.StatusBadRequest, "TrailNotFoundException", "no trail "+key)
	case "DescribeEventBus":
		name := busOr(str("Name"))
		if i := strings.LastIndex(name, ":event-bus/"); i >= 0 {
			name = name[i+len(":event-bus/"):]
		}
		for _, b := range f.Buses {
			if b.Name == name {
				out := map[string]any{"Name": b.Name, "Arn": f.BusARN(b.Name)}
				if b.Policy != "" {
					out["Policy"] = b.Policy
				}
				reply(out)
				return
			}
		}
		if name == "default" {
			reply(map[string]any{"Name": "default", "Arn": f.BusARN("default")})
			return
		}
		fail(http.StatusBadRequest, "ResourceNotFoundException", "Event bus "+name+" does not exist.")
	case "DescribeRule":
		rule := f.rule(str("Name"), str("EventBusName"))
		if rule == nil {
			fail(http.StatusBadRequest, "ResourceNotFoundException", "Rule "+str("Name")+" does not exist.")
			return
		}
		out := map[string]any{"Name": rule.Name, "Arn": f.ruleARN(rule), "EventBusName": rule.Bus, "State": rule.State}
		if rule.Pattern != "" {
			out["EventPattern"] = rule.Pattern
		}
		if rule.Description != "" {
			out["Description"] = rule.Description
		}
		reply(out)
	case "ListRules":
		rules := []map[string]any{}
		for _, rule := range f.Rules {
			if rule.Bus == busOr(str("EventBusName")) && strings.HasPrefix(rule.Name, str("NamePrefix")) {
				rules = append(rules, map[string]any{"Name": rule.Name, "Arn": f.ruleARN(rule), "State": rule.State, "EventBusName": rule.Bus})
			}
		}
		reply(map[string]any{"Rules": rules})
	case "ListRuleNamesByTarget":
		names := []string{}
		for _, rule := range f.Rules {
			for _, t := range rule.Targets {
				if rule.Bus == busOr(str("EventBusName")) && t.ARN == str("TargetArn") {
					names = append(names, rule.Name)
				}
			}
		}
		reply(map[string]any{"RuleNames": names})
	case "ListTargetsByRule":
		rule := f.rule(str("Rule"), str("EventBusName"))
		if rule == nil {
			fail(http.StatusBadRequest, "ResourceNotFoundException", "Rule "+str("Rule")+" does not exist.")
			return
		}
		targets := []map[string]any{}
		for _, t := range rule.Targets {
			m := map[string]any{"Id": t.ID, "Arn": t.ARN}
			if t.DeadLetter != "" {
				m["DeadLetterConfig"] = map[string]any{"Arn": t.DeadLetter}
			}
			if t.RoleARN != "" {
				m["RoleArn"] = t.RoleARN
			}
			if t.Retries != 0 || t.MaxAge != 0 {
				m["RetryPolicy"] = map[string]any{"MaximumRetryAttempts": t.Retries, "MaximumEventAgeInSeconds": t.MaxAge}
			}
			targets = append(targets, m)
		}
		reply(map[string]any{"Targets": targets})
	case "GetQueueUrl":
		for _, q := range f.Queues {
			if q.Name == str("QueueName") && (str("QueueOwnerAWSAccountId") == "" || str("QueueOwnerAWSAccountId") == f.Account) {
				reply(map[string]any{"QueueUrl": f.QueueURL(q.Name)})
				return
			}
		}
		w.Header().Set("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")
		fail(http.StatusBadRequest, "com.amazonaws.sqs#QueueDoesNotExist", "The specified queue does not exist.")
	case "GetQueueAttributes":
		for _, q := range f.Queues {
			// Any host: the doctor builds https://sqs.REGION.amazonaws.com/ACCOUNT/NAME.
			if strings.HasSuffix(str("QueueUrl"), "/"+f.Account+"/"+q.Name) {
				reply(map[string]any{"Attributes": map[string]string{
					"ApproximateNumberOfMessages": itoa(q.Visible), "ApproximateNumberOfMessagesNotVisible": itoa(q.InFlight)}})
				return
			}
		}
		fail(http.StatusBadRequest, "com.amazonaws.sqs#QueueDoesNotExist", "The specified queue does not exist.")
	case "DescribeSecret", "GetSecretValue":
		for _, s := range f.Secrets {
			if s.ARN != str("SecretId") {
				continue
			}
			if op == "DescribeSecret" {
				out := map[string]any{"ARN": s.ARN, "Name": s.ARN[strings.LastIndexByte(s.ARN, ':')+1:]}
				if s.KMSKey != "" {
					out["KmsKeyId"] = s.KMSKey
				}
				if s.Deleted {
					out["DeletedDate"] = 1.7966e9
				}
				reply(out)
				return
			}
			switch {
			case s.ReadDenied:
				fail(http.StatusBadRequest, "AccessDeniedException", "not authorized to perform: secretsmanager:GetSecretValue")
			case s.Deleted:
				fail(http.StatusBadRequest, "InvalidRequestException", "secret is marked for deletion")
			case s.Binary:
				reply(map[string]any{"ARN": s.ARN, "SecretBinary": "AAEC"})
			default:
				reply(map[string]any{"ARN": s.ARN, "SecretString": s.Value})
			}
			return
		}
		fail(http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	default:
		fail(http.StatusBadRequest, "UnknownOperationException", "the doctor fake does not serve "+target)
	}
}

func (f *Doctor) serveLambda(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(strings.TrimPrefix(r.URL.EscapedPath(), "/2015-03-31/functions/"), "/2019-09-25/functions/")
	invokeConfig := strings.HasSuffix(path, "/event-invoke-config")
	path = strings.TrimSuffix(path, "/event-invoke-config")
	name, _ := url.PathUnescape(strings.TrimSuffix(path, "/"))
	op := "GetFunction"
	if invokeConfig {
		op = "GetFunctionEventInvokeConfig"
	}
	f.calls[op]++
	notFound := func(msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"Type": "User", "Message": msg})
	}
	if code := f.Fail[op]; code != "" {
		w.Header().Set("X-Amzn-ErrorType", code)
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(map[string]string{"Type": "User", "Message": "injected"})
		return
	}
	if i := strings.Index(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
	}
	for _, fn := range f.Functions {
		if fn.Name != name {
			continue
		}
		w.Header().Set("Content-Type", "application/json")
		if invokeConfig {
			if fn.OnFailure == "" {
				notFound("The function " + name + " doesn't have an EventInvokeConfig")
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"FunctionArn": f.FunctionARN(name) + ":$LATEST",
				"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": fn.OnFailure}}})
			return
		}
		role := fn.Role
		if role == "" {
			role = "arn:aws:iam::" + f.Account + ":role/" + fn.Name + "-role"
		}
		cfg := map[string]any{"FunctionName": fn.Name, "FunctionArn": f.FunctionARN(fn.Name), "Runtime": "provided.al2023",
			"State": fn.State, "LastUpdateStatus": "Successful", "Environment": map[string]any{"Variables": fn.Env}, "Role": role}
		if fn.StateReason != "" {
			cfg["StateReason"] = fn.StateReason
		}
		json.NewEncoder(w).Encode(map[string]any{"Configuration": cfg})
		return
	}
	notFound("Function not found: " + f.FunctionARN(name))
}

func (f *Doctor) rule(name, bus string) *Rule {
	for _, r := range f.Rules {
		if r.Name == name && r.Bus == busOr(bus) {
			return r
		}
	}
	return nil
}

func busOr(b string) string {
	if b == "" {
		return "default"
	}
	return b
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
