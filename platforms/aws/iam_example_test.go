package aws_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/platforms/aws"
	"github.com/liftoff-k8s/liftoff/spec"
)

// beforeOverride is a Terraform override file that gives examples/aws the access it had before
// every machine and pool had a role of its own: every role may read every object (as the one role
// all machines shared could), and the launch templates leave IMDS's hop limit to AWS's default.
const beforeOverride = "testdata/one-role_override.tf"

// TestAWSExampleLeastPrivilege plans examples/aws for cluster.hcl with the real terraform and the
// real AWS provider, reads every role's policies and every launch template from the plan, and
// evaluates the policies with the stand-in evaluator of iam_test.go: a machine's role reads its own
// object until the instance that booted from it has sealed it, and a replacement instance's role
// still can; a pool's role reads its pool's object; no role reads anything else in the bucket, lists
// it, or writes it; and every launch template requires IMDSv2 with a hop limit of 1. The plan is
// made against a fake EC2 endpoint on loopback that answers the AMI lookup, the only call the plan
// makes: AWS is not reachable here. The same check must find the one-role layout's faults.
func TestAWSExampleLeastPrivilege(t *testing.T) {
	ex := newExamplePlan(t)

	after := ex.plan(t, "")
	findings, summary := leastPrivilegeFindings(t, ex.cluster, after)
	t.Logf("roles per machine and pool: %s", summary)
	for _, f := range findings {
		t.Error(f)
	}

	before, beforeSummary := leastPrivilegeFindings(t, ex.cluster, ex.plan(t, beforeOverride))
	t.Logf("one role for all (%s): %s; %d findings", beforeOverride, beforeSummary, len(before))
	for _, want := range []string{
		"worker node4 reads controller node1's object",
		"controller node1 reads controller node2's object",
		"pool general reads controller node1's object",
		"controller node1 still reads its own object after booting from it",
		"launch template of controller node1 leaves http_put_response_hop_limit",
	} {
		if !slices.ContainsFunc(before, func(f string) bool { return strings.HasPrefix(f, want) }) {
			t.Errorf("the check does not find %q in the one-role layout; it found:\n%s", want, strings.Join(before, "\n"))
		}
	}
}

// examplePlan is a working copy of examples/aws, initialized, and the rendered cluster.hcl.
type examplePlan struct {
	cluster *spec.Cluster
	work    string
	assets  string
	tf      func(args ...string) []byte
}

func newExamplePlan(t *testing.T) *examplePlan {
	t.Helper()
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("this test runs terraform, which is not on PATH: install terraform 1.11.4 (%v)", err)
	}
	specPath := filepath.Join(exampleDir, "cluster.hcl")
	full, _, assets := renderExample(t, specPath, readFile(t, specPath), "")

	work := t.TempDir()
	for _, f := range []string{"main.tf", "liftoff/main.tf"} {
		if err := os.MkdirAll(filepath.Join(work, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), readFile(t, filepath.Join(exampleDir, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ec2 := fakeEC2(t)
	// The provider signs with made-up keys, asks STS and IMDS nothing, and sends EC2 calls to the
	// fake; the plan makes no other call.
	writeFile(t, filepath.Join(work, "test_override.tf"), fmt.Sprintf(`provider "aws" {
  access_key                  = "AKIAEXAMPLEEXAMPLE00"
  secret_key                  = "not-a-secret"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    ec2 = %q
  }
}
`, ec2.URL))
	cliConfig := filepath.Join(work, "terraform.rc")
	writeFile(t, cliConfig, providerInstallation())

	tf := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), terraform, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
			"TF_VAR_assets_dir="+assets)
		cmd.WaitDelay = 10 * time.Second
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("terraform %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return out
	}
	tf("init", "-input=false", "-no-color")
	tf("validate", "-no-color")
	return &examplePlan{cluster: full, work: work, assets: assets, tf: tf}
}

// providerInstallation is the CLI configuration that finds hashicorp/aws: in the directory
// LIFTOFF_TF_PLUGIN_MIRROR names, or /opt/tf-plugins where this machine keeps it, else the registry.
func providerInstallation() string {
	mirror := os.Getenv("LIFTOFF_TF_PLUGIN_MIRROR")
	if mirror == "" {
		mirror = "/opt/tf-plugins"
	}
	if _, err := os.Stat(filepath.Join(mirror, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		return "provider_installation {\n  direct {}\n}\n"
	}
	return fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [\"registry.terraform.io/hashicorp/aws\"]\n  }\n}\n", mirror)
}

// plan plans the working copy, with an override file of testdata beside it if override is not "",
// and returns the plan as `terraform show -json` prints it.
func (e *examplePlan) plan(t *testing.T, override string) tfPlan {
	t.Helper()
	if override != "" {
		dst := filepath.Join(e.work, filepath.Base(override))
		writeFile(t, dst, string(readFile(t, override)))
		defer os.Remove(dst)
	}
	e.tf("plan", "-input=false", "-no-color", "-out=plan.bin")
	var p tfPlan
	if err := json.Unmarshal(e.tf("show", "-json", "plan.bin"), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeEC2 answers DescribeImages with one Flatcar image, for the example's AMI lookup.
func fakeEC2(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "DescribeImages" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidAction</Code><Message>the fake EC2 answers DescribeImages only, not %s</Message></Error></Errors></Response>`, form.Get("Action"))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>00000000-0000-0000-0000-000000000000</requestId>
  <imagesSet>
    <item>
      <imageId>ami-0123456789abcdef0</imageId>
      <imageLocation>075585003325/Flatcar-stable-0000.0.0-hvm</imageLocation>
      <imageState>available</imageState>
      <imageOwnerId>075585003325</imageOwnerId>
      <creationDate>2025-01-01T00:00:00.000Z</creationDate>
      <isPublic>true</isPublic>
      <architecture>x86_64</architecture>
      <imageType>machine</imageType>
      <name>Flatcar-stable-0000.0.0-hvm</name>
      <rootDeviceType>ebs</rootDeviceType>
      <rootDeviceName>/dev/xvda</rootDeviceName>
      <virtualizationType>hvm</virtualizationType>
      <hypervisor>xen</hypervisor>
    </item>
  </imagesSet>
</DescribeImagesResponse>
`)
	}))
	t.Cleanup(s.Close)
	return s
}

// tfPlan is what the check reads of `terraform show -json`.
type tfPlan struct {
	PlannedValues struct {
		RootModule tfModule `json:"root_module"`
	} `json:"planned_values"`
}

type tfModule struct {
	Resources    []tfResource
	ChildModules []tfModule `json:"child_modules"`
}

type tfResource struct {
	Address string
	Mode    string
	Type    string
	Name    string
	Index   any
	Values  map[string]any
}

// resources lists the plan's managed resources of a type, in every module.
func (p tfPlan) resources(typ string) []tfResource {
	var out []tfResource
	var walk func(m tfModule)
	walk = func(m tfModule) {
		for _, r := range m.Resources {
			if r.Mode == "managed" && r.Type == typ {
				out = append(out, r)
			}
		}
		for _, c := range m.ChildModules {
			walk(c)
		}
	}
	walk(p.PlannedValues.RootModule)
	return out
}

func (r tfResource) str(attr string) string {
	s, _ := r.Values[attr].(string)
	return s
}

// block returns the first of a nested block's values, or nil.
func (r tfResource) block(attr string) map[string]any {
	if l, ok := r.Values[attr].([]any); ok && len(l) > 0 {
		m, _ := l[0].(map[string]any)
		return m
	}
	return nil
}

// principal is what one launch template's machines act as: the role of its instance profile.
type principal struct {
	name     string // "controller node1", "worker node4", "pool general"
	own      string // the name of its object
	sealed   bool   // whether its machines seal their object once booted
	policies []iamPolicy
}

// leastPrivilegeFindings evaluates a plan of examples/aws and says, one line each, what a role may
// do that it should not or may not do that it should, and what a launch template leaves open; and
// sums up who reads whose objects.
func leastPrivilegeFindings(t *testing.T, c *spec.Cluster, p tfPlan) (findings []string, summary string) {
	t.Helper()
	const (
		account = "123456789012"
		region  = "eu-central-1"
	)
	for _, typ := range []string{"aws_iam_role_policy_attachment", "aws_iam_policy_attachment", "aws_iam_role_policies_exclusive", "aws_s3_bucket_policy", "aws_s3_access_point"} {
		for _, r := range p.resources(typ) {
			findings = append(findings, fmt.Sprintf("%s: the stand-in evaluator does not read %s; extend it before relying on this check", r.Address, typ))
		}
	}

	kind := map[string]string{}
	for _, n := range c.Controllers {
		kind[n.Name] = "controller " + n.Name
	}
	for _, n := range c.Workers {
		kind[n.Name] = "worker " + n.Name
	}

	// Objects: the machines' and the pools', by name.
	buckets := p.resources("aws_s3_bucket")
	if len(buckets) != 1 || buckets[0].str("bucket") == "" {
		t.Fatalf("the plan has %d buckets, want the configs bucket with its name known", len(buckets))
	}
	bucketARN := "arn:aws:s3:::" + buckets[0].str("bucket")
	objects := map[string]string{} // owner name -> ARN
	owner := map[string]string{}   // owner name -> "controller node1's object"
	for _, o := range p.resources("aws_s3_object") {
		name, _ := o.Index.(string)
		switch {
		case o.Name == "ignition" && kind[name] != "":
			owner[name] = kind[name] + "'s object"
		case o.Name == "pool":
			owner[name] = "pool " + name + "'s object"
		default:
			t.Fatalf("%s is no machine's or pool's object", o.Address)
		}
		objects[name] = bucketARN + "/" + o.str("key")
	}
	if len(objects) != len(c.Machines())+len(c.WorkerPools) {
		t.Fatalf("the plan uploads %d objects, want one per machine and pool (%d)", len(objects), len(c.Machines())+len(c.WorkerPools))
	}

	// Principals: each launch template's instance profile, its role, and the role's policies.
	roleOf := map[string]string{}
	for _, ip := range p.resources("aws_iam_instance_profile") {
		roleOf[ip.str("name")] = ip.str("role")
	}
	policiesOf := map[string][]iamPolicy{}
	for _, rp := range p.resources("aws_iam_role_policy") {
		doc := rp.str("policy")
		if doc == "" {
			t.Fatalf("%s: policy unknown when planned; build its ARNs from names so that the plan shows it", rp.Address)
		}
		pol, err := parsePolicy(doc)
		if err != nil {
			t.Fatalf("%s: %v", rp.Address, err)
		}
		policiesOf[rp.str("role")] = append(policiesOf[rp.str("role")], pol)
	}
	var principals []principal
	for _, lt := range p.resources("aws_launch_template") {
		name, _ := lt.Index.(string)
		pr := principal{own: name}
		switch {
		case lt.Name == "machine" && kind[name] != "":
			pr.name, pr.sealed = kind[name], true
		case lt.Name == "pool":
			pr.name = "pool " + name
		default:
			t.Fatalf("%s is no machine's or pool's launch template", lt.Address)
		}

		md := lt.block("metadata_options")
		if md == nil || md["http_tokens"] != "required" {
			findings = append(findings, fmt.Sprintf("launch template of %s does not require IMDSv2 (http_tokens %v)", pr.name, md["http_tokens"]))
		}
		if hop, _ := md["http_put_response_hop_limit"].(float64); hop != 1 {
			findings = append(findings, fmt.Sprintf("launch template of %s leaves http_put_response_hop_limit at %v, not 1: containers reach the node's role", pr.name, md["http_put_response_hop_limit"]))
		}
		if e, set := md["http_endpoint"]; set && e != nil && e != "enabled" {
			findings = append(findings, fmt.Sprintf("launch template of %s: http_endpoint %v, and Ignition needs IMDS", pr.name, e))
		}

		profile := lt.block("iam_instance_profile")
		profileName, _ := profile["name"].(string)
		role, ok := roleOf[profileName]
		if !ok {
			t.Fatalf("%s: instance profile %q is not one of the plan's, known by name when planned", lt.Address, profileName)
		}
		pr.policies = policiesOf[role]
		principals = append(principals, pr)
	}
	if len(principals) != len(objects) {
		t.Fatalf("the plan has %d launch templates, want one per machine and pool (%d)", len(principals), len(objects))
	}
	// Every machine runs from its launch template and nothing else gives it a profile.
	for _, typ := range []string{"aws_instance", "aws_autoscaling_group"} {
		for _, r := range p.resources(typ) {
			if r.block("launch_template") == nil {
				findings = append(findings, fmt.Sprintf("%s runs without a launch template", r.Address))
			}
			if r.str("iam_instance_profile") != "" || r.block("metadata_options") != nil {
				findings = append(findings, fmt.Sprintf("%s sets its own instance profile or metadata options over its launch template's", r.Address))
			}
		}
	}

	names := make([]string, 0, len(objects))
	for name := range objects {
		names = append(names, name)
	}
	slices.Sort(names)
	slices.SortFunc(principals, func(a, b principal) int { return strings.Compare(a.name, b.name) })
	counts := map[string]int{}
	for _, pr := range principals {
		instance := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/i-%x", region, account, pr.name)
		earlier := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/i-%x0", region, account, pr.name)
		ask := func(action, resource string, ctx map[string]string) iamDecision {
			full := map[string]string{"ec2:SourceInstanceARN": instance}
			for k, v := range ctx {
				full[k] = v
			}
			d, err := decide(pr.policies, iamRequest{Action: action, Resource: resource, Context: full})
			if err != nil {
				t.Fatalf("%s: %v", pr.name, err)
			}
			return d
		}
		sealedBy := func(arn string) map[string]string {
			return map[string]string{"s3:ExistingObjectTag/" + aws.BootedTag: arn}
		}
		states := []struct {
			name string
			ctx  map[string]string
		}{{"before booting", nil}, {"sealed by an earlier instance", sealedBy(earlier)}, {"sealed by this instance", sealedBy(instance)}}

		for _, name := range names {
			arn, own := objects[name], name == pr.own
			for _, s := range states {
				got := ask("s3:GetObject", arn, s.ctx) == allowed
				switch {
				case !own && got:
					findings = append(findings, fmt.Sprintf("%s reads %s (%s)", pr.name, owner[name], s.name))
				case own && !got && s.ctx == nil:
					findings = append(findings, fmt.Sprintf("%s cannot read its own object to boot", pr.name))
				case own && !got && s.name == "sealed by an earlier instance":
					findings = append(findings, fmt.Sprintf("%s cannot read its own object once an earlier instance sealed it: a replacement cannot boot", pr.name))
				case own && got && pr.sealed && s.name == "sealed by this instance":
					findings = append(findings, fmt.Sprintf("%s still reads its own object after booting from it", pr.name))
				}
				if got && s.ctx == nil && !own {
					counts[strings.Fields(pr.name)[0]+"→"+strings.Fields(owner[name])[0]]++
				}
			}
			for _, action := range []string{"s3:PutObject", "s3:DeleteObject", "s3:PutObjectAcl", "s3:DeleteObjectTagging", "s3:GetObjectAcl"} {
				if ask(action, arn, nil) == allowed {
					findings = append(findings, fmt.Sprintf("%s may %s on %s", pr.name, action, owner[name]))
				}
			}
			tag := "s3:RequestObjectTag/" + aws.BootedTag
			switch {
			case !own && ask("s3:PutObjectTagging", arn, map[string]string{tag: instance}) == allowed:
				findings = append(findings, fmt.Sprintf("%s may tag %s", pr.name, owner[name]))
			case own && pr.sealed && ask("s3:PutObjectTagging", arn, map[string]string{tag: instance}) != allowed:
				findings = append(findings, fmt.Sprintf("%s cannot seal its own object", pr.name))
			case own && pr.sealed && ask("s3:GetObjectTagging", arn, nil) != allowed:
				findings = append(findings, fmt.Sprintf("%s cannot read its own object's tags, which the seal keeps", pr.name))
			}
			for _, ctx := range []map[string]string{nil, {tag: earlier}, {tag: ""}} {
				if ask("s3:PutObjectTagging", arn, ctx) == allowed {
					findings = append(findings, fmt.Sprintf("%s may tag %s other than as sealed by itself (%v): it could unseal it", pr.name, owner[name], ctx))
				}
			}
		}
		for _, r := range []struct{ action, resource string }{
			{"s3:ListBucket", bucketARN},
			{"s3:GetObject", bucketARN + "/" + c.Name + "/not-rendered.ign"},
			{"s3:GetObject", bucketARN + "/other/object"},
			{"s3:PutObject", bucketARN + "/" + c.Name + "/not-rendered.ign"},
		} {
			if ask(r.action, r.resource, nil) == allowed {
				findings = append(findings, fmt.Sprintf("%s may %s on %s", pr.name, r.action, r.resource))
			}
		}
	}
	var parts []string
	for _, k := range []string{"controller→controller", "worker→controller", "pool→controller", "controller→worker", "worker→worker", "pool→worker", "controller→pool", "worker→pool", "pool→pool"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return findings, "objects of others readable before boot: " + strings.Join(parts, ", ")
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
