package awsfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The loaders below fill the fakes from a synthesized CloudFormation template, as the stack
// would leave the account once deployed: a test then checks the doctor against what the CDK
// app actually renders, not against a copy written by hand. They resolve the intrinsics the
// kmsfix templates use (Ref, Fn::GetAtt ...Arn, Fn::Join, Fn::If, conditions of Fn::Equals,
// Fn::And and Fn::Not: the spoke's IsSandbox and role-Region conditions) and fail
// on any other.

// CFNEnv is where a template is deployed.
type CFNEnv struct {
	Partition, Account, Region string
	StackName                  string // prefixes generated physical names
	Parameters                 map[string]string
}

type cfnTemplate struct {
	Conditions map[string]any            `json:"Conditions"`
	Resources  map[string]map[string]any `json:"Resources"`
}

// resolver turns template values into deployed values.
type resolver struct {
	env   CFNEnv
	t     cfnTemplate
	names map[string]string // logical id -> physical name (Ref)
	arns  map[string]string // logical id -> ARN (Fn::GetAtt Arn)
}

func newResolver(template []byte, env CFNEnv) (*resolver, error) {
	r := &resolver{env: env, names: map[string]string{}, arns: map[string]string{}}
	if err := json.Unmarshal(template, &r.t); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	prefix := fmt.Sprintf("arn:%s:", env.Partition)
	for id, res := range r.t.Resources {
		props, _ := res["Properties"].(map[string]any)
		named := func(key string) string {
			if n, ok := props[key].(string); ok {
				return n
			}
			return env.StackName + "-" + id + "-FAKE1234"
		}
		switch res["Type"] {
		case "AWS::IAM::Role":
			r.names[id] = named("RoleName")
			r.arns[id] = prefix + "iam::" + env.Account + ":role/" + r.names[id]
		case "AWS::SQS::Queue":
			r.names[id] = "https://sqs." + env.Region + ".amazonaws.com/" + env.Account + "/" + named("QueueName")
			r.arns[id] = prefix + "sqs:" + env.Region + ":" + env.Account + ":" + named("QueueName")
		case "AWS::Events::EventBus":
			r.names[id] = named("Name")
			r.arns[id] = prefix + "events:" + env.Region + ":" + env.Account + ":event-bus/" + r.names[id]
		case "AWS::Events::Rule":
			r.names[id] = named("Name")
			r.arns[id] = prefix + "events:" + env.Region + ":" + env.Account + ":rule/" + r.names[id]
		case "AWS::Lambda::Function":
			r.names[id] = named("FunctionName")
			r.arns[id] = prefix + "lambda:" + env.Region + ":" + env.Account + ":function:" + r.names[id]
		case "AWS::SNS::Topic": // Ref is the topic's ARN
			r.arns[id] = prefix + "sns:" + env.Region + ":" + env.Account + ":" + named("TopicName")
			r.names[id] = r.arns[id]
		default: // e.g. AWS::KMS::Key: Ref is the id, Arn arn:...:kms:REGION:ACCOUNT:key/ID
			r.names[id] = named("Name")
			svc, kind, _ := strings.Cut(strings.TrimPrefix(fmt.Sprint(res["Type"]), "AWS::"), "::")
			r.arns[id] = prefix + strings.ToLower(svc) + ":" + env.Region + ":" + env.Account + ":" + strings.ToLower(kind) + "/" + r.names[id]
		}
	}
	return r, nil
}

// exists says whether a resource is created: its Condition, if any, holds.
func (r *resolver) exists(id string) (bool, error) {
	cond, _ := r.t.Resources[id]["Condition"].(string)
	if cond == "" {
		return true, nil
	}
	return r.condition(cond)
}

// condition evaluates a named condition: Fn::Equals, Fn::And and Fn::Not over values and
// other conditions (the spoke's IsSandbox and its role-Region conditions).
func (r *resolver) condition(name string) (bool, error) {
	c, ok := r.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %s", name)
	}
	v, err := r.evalCondition(c)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	return v, nil
}

func (r *resolver) evalCondition(c any) (bool, error) {
	m, _ := c.(map[string]any)
	if len(m) != 1 {
		return false, fmt.Errorf("not a condition function: %v", c)
	}
	for fn, arg := range m {
		args := asList(arg)
		switch fn {
		case "Condition":
			return r.condition(fmt.Sprint(arg))
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals takes two values")
			}
			a, err := r.resolve(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.resolve(args[1])
			return a == b, err
		case "Fn::And":
			for _, x := range args {
				if v, err := r.evalCondition(x); err != nil || !v {
					return false, err
				}
			}
			return len(args) > 0, nil
		case "Fn::Not":
			if len(args) != 1 {
				return false, fmt.Errorf("Fn::Not takes one condition")
			}
			v, err := r.evalCondition(args[0])
			return !v, err
		}
		return false, fmt.Errorf("only Fn::Equals, Fn::And, Fn::Not and Condition are resolved, not %s", fn)
	}
	return false, nil
}

// resolve returns v with every intrinsic replaced by its deployed value.
func (r *resolver) resolve(v any) (any, error) {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	case map[string]any:
		if ref, ok := t["Ref"].(string); ok && len(t) == 1 {
			switch ref {
			case "AWS::Partition":
				return r.env.Partition, nil
			case "AWS::AccountId":
				return r.env.Account, nil
			case "AWS::Region":
				return r.env.Region, nil
			}
			if v, ok := r.env.Parameters[ref]; ok {
				return v, nil
			}
			if n, ok := r.names[ref]; ok {
				return n, nil
			}
			return nil, fmt.Errorf("unresolved Ref %s", ref)
		}
		if ga, ok := t["Fn::GetAtt"].([]any); ok && len(t) == 1 {
			if len(ga) == 2 && ga[1] == "Arn" {
				if a, ok := r.arns[fmt.Sprint(ga[0])]; ok {
					return a, nil
				}
			}
			return nil, fmt.Errorf("unresolved Fn::GetAtt %v", ga)
		}
		if branches, ok := t["Fn::If"].([]any); ok && len(t) == 1 && len(branches) == 3 {
			holds, err := r.condition(fmt.Sprint(branches[0]))
			if err != nil {
				return nil, err
			}
			if holds {
				return r.resolve(branches[1])
			}
			return r.resolve(branches[2])
		}
		if j, ok := t["Fn::Join"].([]any); ok && len(t) == 1 && len(j) == 2 {
			parts, err := r.resolve(j[1])
			if err != nil {
				return nil, err
			}
			var s []string
			for _, p := range parts.([]any) {
				s = append(s, fmt.Sprint(p))
			}
			return strings.Join(s, fmt.Sprint(j[0])), nil
		}
		out := map[string]any{}
		for k, x := range t {
			if strings.HasPrefix(k, "Fn::") {
				return nil, fmt.Errorf("unresolved intrinsic %s", k)
			}
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	}
	return v, nil
}

// each calls fn with the resolved properties of every created resource of a type, in
// logical-id order.
func (r *resolver) each(typ string, fn func(id string, props map[string]any) error) error {
	var ids []string
	for id, res := range r.t.Resources {
		if res["Type"] == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		ok, err := r.exists(id)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		p, err := r.resolve(r.t.Resources[id]["Properties"])
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		props, _ := p.(map[string]any)
		if err := fn(id, props); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	return nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// LoadTemplate deploys a template's EventBridge and Lambda resources into the Doctor fake (its
// Account and Region become env's) and its IAM roles with their inline policies (the roles'
// Policies and the AWS::IAM::Policy resources naming them) into the IAM fake (nil: none). The
// fake's earlier buses, rules and functions are replaced.
func LoadTemplate(d *Doctor, iamFake *IAM, template []byte, env CFNEnv) error {
	r, err := newResolver(template, env)
	if err != nil {
		return err
	}
	d.Lock()
	defer d.Unlock()
	d.Account, d.Region = env.Account, env.Region
	d.Buses, d.Rules, d.Functions = nil, nil, nil
	if err := r.each("AWS::Events::EventBus", func(id string, p map[string]any) error {
		d.Buses = append(d.Buses, &Bus{Name: r.names[id]})
		return nil
	}); err != nil {
		return err
	}
	if err := r.each("AWS::Events::EventBusPolicy", func(id string, p map[string]any) error {
		st, _ := p["Statement"].(map[string]any)
		st["Sid"] = p["StatementId"]
		for _, b := range d.Buses {
			if b.Name == p["EventBusName"] {
				b.Policy = jsonText(map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
				return nil
			}
		}
		return fmt.Errorf("policy of unknown bus %v", p["EventBusName"])
	}); err != nil {
		return err
	}
	if err := r.each("AWS::Events::Rule", func(id string, p map[string]any) error {
		rule := &Rule{Name: r.names[id], Bus: "default"}
		if b, ok := p["EventBusName"].(string); ok {
			rule.Bus = b
		}
		rule.State, _ = p["State"].(string)
		rule.Description, _ = p["Description"].(string)
		if ep, ok := p["EventPattern"]; ok {
			rule.Pattern = jsonText(ep)
		}
		for _, x := range asList(p["Targets"]) {
			t := x.(map[string]any)
			tg := Target{ID: fmt.Sprint(t["Id"]), ARN: fmt.Sprint(t["Arn"])}
			if role, ok := t["RoleArn"].(string); ok {
				tg.RoleARN = role
			}
			if dl, ok := t["DeadLetterConfig"].(map[string]any); ok {
				tg.DeadLetter, _ = dl["Arn"].(string)
			}
			if rp, ok := t["RetryPolicy"].(map[string]any); ok {
				tg.Retries, tg.MaxAge = toInt(rp["MaximumRetryAttempts"]), toInt(rp["MaximumEventAgeInSeconds"])
			}
			rule.Targets = append(rule.Targets, tg)
		}
		d.Rules = append(d.Rules, rule)
		return nil
	}); err != nil {
		return err
	}
	if err := r.each("AWS::Lambda::Function", func(id string, p map[string]any) error {
		fn := &Function{Name: r.names[id], State: "Active", Env: map[string]string{}}
		fn.Role, _ = p["Role"].(string)
		vars, _ := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		for k, v := range vars {
			fn.Env[k] = fmt.Sprint(v)
		}
		d.Functions = append(d.Functions, fn)
		return nil
	}); err != nil {
		return err
	}
	if iamFake == nil {
		return nil
	}
	roles := map[string]*IAMPrincipal{}
	if err := r.each("AWS::IAM::Role", func(id string, p map[string]any) error {
		role := &IAMPrincipal{ARN: r.arns[id], Trust: jsonText(p["AssumeRolePolicyDocument"])}
		for _, x := range asList(p["Policies"]) {
			ip := x.(map[string]any)
			role.Inline = append(role.Inline, IAMPolicy{Name: fmt.Sprint(ip["PolicyName"]), Document: jsonText(ip["PolicyDocument"])})
		}
		for _, m := range asList(p["ManagedPolicyArns"]) {
			role.Attached = append(role.Attached, fmt.Sprint(m))
		}
		roles[r.names[id]] = role
		return nil
	}); err != nil {
		return err
	}
	if err := r.each("AWS::IAM::Policy", func(id string, p map[string]any) error {
		for _, name := range asList(p["Roles"]) {
			role := roles[fmt.Sprint(name)]
			if role == nil {
				return fmt.Errorf("policy for unknown role %v", name)
			}
			role.Inline = append(role.Inline, IAMPolicy{Name: fmt.Sprint(p["PolicyName"]), Document: jsonText(p["PolicyDocument"])})
		}
		return nil
	}); err != nil {
		return err
	}
	for _, role := range roles {
		iamFake.PutPrincipal(*role)
	}
	return nil
}

// LoadStackSet deploys a template's AWS::CloudFormation::StackSet into the fake, with one
// CURRENT instance per account of each OU (accounts) and Region.
func LoadStackSet(cf *CloudFormation, template []byte, env CFNEnv, accounts map[string][]string) error {
	r, err := newResolver(template, env)
	if err != nil {
		return err
	}
	return r.each("AWS::CloudFormation::StackSet", func(id string, p map[string]any) error {
		s := StackSet{Name: fmt.Sprint(p["StackSetName"]), PermissionModel: fmt.Sprint(p["PermissionModel"])}
		s.CallAs, _ = p["CallAs"].(string)
		if ad, ok := p["AutoDeployment"].(map[string]any); ok {
			s.AutoDeployment = ad["Enabled"] == true
		}
		for _, g := range asList(p["StackInstancesGroup"]) {
			group := g.(map[string]any)
			ous := asList(group["DeploymentTargets"].(map[string]any)["OrganizationalUnitIds"])
			regions := asList(group["Regions"])
			for _, ou := range ous {
				s.OUs = appendNew(s.OUs, fmt.Sprint(ou))
				for _, region := range regions {
					s.Regions = appendNew(s.Regions, fmt.Sprint(region))
					for _, acct := range accounts[fmt.Sprint(ou)] {
						s.Instances = append(s.Instances, StackInstance{Account: acct, Region: fmt.Sprint(region), OU: fmt.Sprint(ou)})
					}
				}
			}
		}
		cf.PutStackSet(s)
		return nil
	})
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func appendNew(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

func toInt(v any) int {
	f, _ := v.(float64)
	return int(f)
}
