package aws_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file is a small stand-in for AWS's evaluation of identity-based IAM policies, enough to read
// the policies examples/aws renders and say what a role may do. It is not AWS's evaluator: it knows
// Allow and Deny, Action and Resource with * and ? wildcards, policy variables like
// ${ec2:SourceInstanceARN}, and the String condition operators with their IfExists forms. A policy
// that uses anything else (NotAction, NotResource, other operators, ForAnyValue and ForAllValues)
// makes it return an error rather than guess. Its Resource wildcard matches across ARN segments,
// which is looser than AWS, so "cannot" is never overstated.

// iamPolicy is a JSON policy document as aws_iam_policy_document renders it.
type iamPolicy struct {
	Version   string
	Statement []iamStatement
}

type iamStatement struct {
	Sid          string
	Effect       string
	Action       stringList
	NotAction    stringList
	Resource     stringList
	NotResource  stringList
	Principal    json.RawMessage
	NotPrincipal json.RawMessage
	// Condition is operator -> condition key -> values.
	Condition map[string]map[string]stringList
}

// stringList is a policy element that is either a string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("policy element %s is neither a string nor a list of strings", b)
	}
	*l = many
	return nil
}

func parsePolicy(doc string) (iamPolicy, error) {
	var p iamPolicy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		return p, fmt.Errorf("policy document: %w", err)
	}
	for i, s := range p.Statement {
		switch {
		case s.Effect != "Allow" && s.Effect != "Deny":
			return p, fmt.Errorf("statement %d (%s): effect %q", i, s.Sid, s.Effect)
		case len(s.NotAction) > 0 || len(s.NotResource) > 0:
			return p, fmt.Errorf("statement %d (%s): NotAction and NotResource are not evaluated here", i, s.Sid)
		case len(s.Principal) > 0 || len(s.NotPrincipal) > 0:
			return p, fmt.Errorf("statement %d (%s): a Principal belongs in a resource policy, not a role's", i, s.Sid)
		}
	}
	return p, nil
}

// iamRequest is one API call as IAM sees it: the action, the resource's ARN and the request context.
// A condition key missing from Context is absent from the request.
type iamRequest struct {
	Action   string
	Resource string
	Context  map[string]string
}

type iamDecision int

const (
	implicitDeny iamDecision = iota
	allowed
	explicitDeny
)

func (d iamDecision) String() string {
	return [...]string{"implicitly denied", "allowed", "explicitly denied"}[d]
}

// decide evaluates a principal's identity policies for a request as AWS does within one account and
// without resource policies, boundaries or SCPs: an explicit Deny wins, then any Allow, and
// otherwise the request is denied.
func decide(policies []iamPolicy, r iamRequest) (iamDecision, error) {
	d := implicitDeny
	for _, p := range policies {
		for _, s := range p.Statement {
			applies, err := s.appliesTo(r)
			if err != nil {
				return 0, err
			}
			switch {
			case applies && s.Effect == "Deny":
				return explicitDeny, nil
			case applies:
				d = allowed
			}
		}
	}
	return d, nil
}

func (s iamStatement) appliesTo(r iamRequest) (bool, error) {
	if !matchAny(s.Action, r.Action, false, r.Context) || !matchAny(s.Resource, r.Resource, true, r.Context) {
		return false, nil
	}
	for op, keys := range s.Condition {
		for key, values := range keys {
			ok, err := condition(op, key, values, r.Context)
			if err != nil {
				return false, fmt.Errorf("statement %s: %w", s.Sid, err)
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}

// condition evaluates one condition key under one operator. With several values a positive operator
// needs one to match, a negated one needs none to. A key absent from the request fails a positive
// operator and passes a negated one; IfExists passes either. A value whose policy variable the
// request does not have makes the statement not apply, whatever the operator: AWS holds such a
// statement invalid.
func condition(op, key string, values []string, ctx map[string]string) (bool, error) {
	base, ifExists := strings.CutSuffix(op, "IfExists")
	var like, negated bool
	switch base {
	case "StringEquals":
	case "StringNotEquals":
		negated = true
	case "StringLike":
		like = true
	case "StringNotLike":
		like, negated = true, true
	default:
		return false, fmt.Errorf("condition operator %s is not evaluated here", op)
	}
	resolved := make([]string, len(values))
	for i, v := range values {
		var ok bool
		if resolved[i], ok = substitute(v, ctx); !ok {
			return false, nil
		}
	}
	actual, present := ctx[key]
	if !present {
		return ifExists || negated, nil
	}
	matched := slices.ContainsFunc(resolved, func(v string) bool {
		return like && glob(v, actual, true) || !like && v == actual
	})
	return matched != negated, nil
}

var policyVariable = regexp.MustCompile(`\$\{([^}]+)\}`)

// substitute replaces ${key} with the request's value of key, and says whether every key was there.
func substitute(s string, ctx map[string]string) (string, bool) {
	ok := true
	out := policyVariable.ReplaceAllStringFunc(s, func(v string) string {
		value, present := ctx[policyVariable.FindStringSubmatch(v)[1]]
		ok = ok && present
		return value
	})
	return out, ok
}

func matchAny(patterns []string, s string, caseSensitive bool, ctx map[string]string) bool {
	for _, p := range patterns {
		if p, ok := substitute(p, ctx); ok && glob(p, s, caseSensitive) {
			return true
		}
	}
	return false
}

// glob matches s against a pattern where * is any run of characters and ? is one character.
func glob(pattern, s string, caseSensitive bool) bool {
	if !caseSensitive {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

// TestPolicyEvaluatorStandIn pins the stand-in's own rules, so that a finding of the example's test is
// one about the policies and not about the evaluator.
func TestPolicyEvaluatorStandIn(t *testing.T) {
	const instance = "arn:aws:ec2:eu-central-1:123456789012:instance/i-0000000000000000a"
	policy := func(doc string) []iamPolicy {
		p, err := parsePolicy(doc)
		if err != nil {
			t.Fatal(err)
		}
		return []iamPolicy{p}
	}
	getObject := func(resource string, ctx map[string]string) iamRequest {
		return iamRequest{Action: "s3:GetObject", Resource: resource, Context: ctx}
	}
	tagged := func(by string) map[string]string {
		return map[string]string{"ec2:SourceInstanceARN": instance, "s3:ExistingObjectTag/seal": by}
	}
	for _, tc := range []struct {
		name     string
		policies []iamPolicy
		request  iamRequest
		want     iamDecision
	}{
		{"nothing allows", policy(`{"Statement":[]}`), getObject("arn:aws:s3:::b/k", nil), implicitDeny},
		{"exact allow", policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k"}]}`),
			getObject("arn:aws:s3:::b/k", nil), allowed},
		{"another key", policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k"}]}`),
			getObject("arn:aws:s3:::b/k2", nil), implicitDeny},
		{"action wildcard, any case", policy(`{"Statement":[{"Effect":"Allow","Action":["s3:Get*"],"Resource":"*"}]}`),
			getObject("arn:aws:s3:::b/k", nil), allowed},
		{"resource wildcard", policy(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/c?/*"}]}`),
			getObject("arn:aws:s3:::b/c1/d/e", nil), allowed},
		{"resource is case-sensitive", policy(`{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/K"}]}`),
			getObject("arn:aws:s3:::b/k", nil), implicitDeny},
		{"deny wins", policy(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`),
			getObject("arn:aws:s3:::b/k", nil), explicitDeny},
		{"negated variable condition, tag absent",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEqualsIfExists":{"s3:ExistingObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			getObject("arn:aws:s3:::b/k", map[string]string{"ec2:SourceInstanceARN": instance}), allowed},
		{"negated variable condition, tag names the instance",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEqualsIfExists":{"s3:ExistingObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			getObject("arn:aws:s3:::b/k", tagged(instance)), implicitDeny},
		{"negated variable condition, tag names another instance",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEqualsIfExists":{"s3:ExistingObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			getObject("arn:aws:s3:::b/k", tagged("arn:aws:ec2:eu-central-1:123456789012:instance/i-0000000000000000b")), allowed},
		{"positive condition, key absent",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:PutObjectTagging","Resource":"*","Condition":{"StringEquals":{"s3:RequestObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			iamRequest{Action: "s3:PutObjectTagging", Resource: "arn:aws:s3:::b/k", Context: map[string]string{"ec2:SourceInstanceARN": instance}}, implicitDeny},
		{"variable not in the request",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:PutObjectTagging","Resource":"*","Condition":{"StringEquals":{"s3:RequestObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			iamRequest{Action: "s3:PutObjectTagging", Resource: "arn:aws:s3:::b/k", Context: map[string]string{"s3:RequestObjectTag/seal": ""}}, implicitDeny},
		{"negated condition, variable not in the request",
			policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEqualsIfExists":{"s3:ExistingObjectTag/seal":"${ec2:SourceInstanceARN}"}}}]}`),
			getObject("arn:aws:s3:::b/k", nil), implicitDeny},
		{"StringLike", policy(`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringLike":{"aws:userid":"*:i-*"}}}]}`),
			getObject("arn:aws:s3:::b/k", map[string]string{"aws:userid": "AROAEXAMPLE:i-0a"}), allowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decide(tc.policies, tc.request)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s on %s with %v: %s, want %s", tc.request.Action, tc.request.Resource, tc.request.Context, got, tc.want)
			}
		})
	}
	for _, doc := range []string{
		`{"Statement":[{"Effect":"Allow","NotAction":"s3:GetObject","Resource":"*"}]}`,
		`{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/k"}]}`,
		`{"Statement":[{"Effect":"Maybe","Action":"s3:GetObject","Resource":"*"}]}`,
	} {
		if _, err := parsePolicy(doc); err == nil {
			t.Errorf("the stand-in evaluates %s instead of refusing it", doc)
		}
	}
	_, err := decide(policy(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":"a"}}}]}`),
		getObject("arn:aws:s3:::b/k", nil))
	if err == nil {
		t.Error("the stand-in evaluates ForAnyValue instead of refusing it")
	}
}
