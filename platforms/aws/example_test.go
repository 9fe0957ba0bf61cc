package aws_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/aws"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/spec"
)

const exampleDir = "../../examples/aws"

// moduleOutputs is what `terraform output -json` says of the example's liftoff module.
type moduleOutputs struct {
	UserData     struct{ Value map[string]string } `json:"user_data"`
	Fingerprints struct{ Value map[string]string }
	Objects      struct{ Value map[string]object }
	Controllers  struct {
		Value map[string]struct {
			IP         string
			EtcdVolume aws.EtcdVolume `json:"etcd_volume"`
		}
	}
	Pools struct {
		Value map[string]struct {
			InstanceType    string `json:"instance_type"`
			MinSize         int    `json:"min_size"`
			DesiredCapacity int    `json:"desired_capacity"`
			MaxSize         int    `json:"max_size"`
			UserData        string `json:"user_data"`
			Fingerprint     string
			Object          object
		}
	}
	Bucket struct{ Value string }
}

type object struct{ Key, Source, SHA512 string }

// TestAWSExample checks examples/aws with the real terraform: the configuration is formatted, and
// its liftoff module, applied to the rendered cluster.hcl, hands the AWS resources user data within
// EC2's limit whose hashes are those terraform computes for the objects it uploads, for every machine
// and worker pool. A pool's fingerprint, which its launch template carries, changes with the pool's
// config and nothing else's. The AWS resources themselves need AWS's APIs, which are not reachable
// here: they are not applied, and main.tf is checked for how it wires the pools' autoscaling groups.
func TestAWSExample(t *testing.T) {
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("this test runs terraform, which is not on PATH: install terraform 1.11.4 (%v)", err)
	}
	tf := func(dir string, args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), terraform, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE=/dev/null", "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
		cmd.WaitDelay = 10 * time.Second
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("terraform %s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, out, stderr.String())
		}
		return out
	}
	tf(exampleDir, "fmt", "-check", "-diff", "-recursive")

	specPath := filepath.Join(exampleDir, "cluster.hcl")
	src := readFile(t, specPath)
	full, all, assets := renderExample(t, specPath, src, "")

	// Every module output that main.tf uses exists.
	mainTF := readFile(t, filepath.Join(exampleDir, "main.tf"))
	module := string(readFile(t, filepath.Join(exampleDir, "liftoff", "main.tf")))
	for _, m := range regexp.MustCompile(`module\.liftoff\.(\w+)`).FindAllStringSubmatch(string(mainTF), -1) {
		if !strings.Contains(module, `output "`+m[1]+`"`) {
			t.Errorf("main.tf uses module.liftoff.%s, which liftoff/main.tf does not output", m[1])
		}
	}
	checkPoolResources(t, mainTF)

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	tf(work, "init", "-input=false", "-no-color")
	apply := func(assets string) moduleOutputs {
		t.Helper()
		tf(work, "apply", "-auto-approve", "-input=false", "-no-color", "-var", "assets_dir="+assets)
		var out moduleOutputs
		if err := json.Unmarshal(tf(work, "output", "-json"), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	outputs := apply(assets)

	var names []string
	for _, n := range full.Machines() {
		names = append(names, n.Name)
	}
	if got := keys(outputs.UserData.Value); !slices.Equal(got, sorted(names)) {
		t.Fatalf("module outputs user data for %v, want every machine %v", got, sorted(names))
	}
	for _, name := range names {
		userData, err := base64.StdEncoding.DecodeString(outputs.UserData.Value[name])
		if err != nil {
			t.Fatal(err)
		}
		checkPointer(t, name, userData, all.Get("aws/user-data/"+name+".ign").Data, outputs.Bucket.Value, outputs.Objects.Value[name])
		if outputs.Fingerprints.Value[name] != outputs.Objects.Value[name].SHA512 {
			t.Errorf("%s: launch template fingerprint %s is not the uploaded object's sha512", name, outputs.Fingerprints.Value[name])
		}
		if object := outputs.Objects.Value[name]; !bytes.Equal(readFile(t, object.Source), all.Get("aws/ignition/"+name+".ign").Data) {
			t.Errorf("%s: terraform uploads %s, not the rendered object", name, object.Source)
		}
	}
	for name, ctl := range outputs.Controllers.Value {
		if ctl.EtcdVolume.Device != "/dev/xvdf" || ctl.EtcdVolume.Size != 20 {
			t.Errorf("%s: etcd volume %+v, want /dev/xvdf of 20 GiB as cluster.hcl says", name, ctl.EtcdVolume)
		}
	}

	// The worker pool: an autoscaling group sized as cluster.hcl says, whose launch template's user
	// data fetches and verifies exactly what terraform uploads.
	if got := keys(outputs.Pools.Value); !slices.Equal(got, []string{"general"}) {
		t.Fatalf("module outputs pools %v, want the general pool of cluster.hcl", got)
	}
	pool := outputs.Pools.Value["general"]
	if pool.InstanceType != "m6i.large" || pool.MinSize != 3 || pool.DesiredCapacity != 3 || pool.MaxSize != 10 {
		t.Errorf("pool general: %s with min %d, desired %d, max %d; cluster.hcl says m6i.large, 3, 3, 10",
			pool.InstanceType, pool.MinSize, pool.DesiredCapacity, pool.MaxSize)
	}
	poolUserData, err := base64.StdEncoding.DecodeString(pool.UserData)
	if err != nil {
		t.Fatal(err)
	}
	checkPointer(t, "pool general", poolUserData, all.Get("aws/user-data/pools/general.ign").Data, outputs.Bucket.Value, pool.Object)
	if pool.Fingerprint != pool.Object.SHA512 {
		t.Errorf("pool general: launch template fingerprint %s is not the uploaded object's sha512 %s", pool.Fingerprint, pool.Object.SHA512)
	}
	if !bytes.Equal(readFile(t, pool.Object.Source), all.Get(generator.OutPoolIgnitionDir+"/general.ign").Data) {
		t.Errorf("pool general: terraform uploads %s, not the pool's rendered Ignition config", pool.Object.Source)
	}
	t.Logf("pool general: user data %d bytes, full config %d bytes", len(poolUserData), len(readFile(t, pool.Object.Source)))

	// Render again into a new directory with the first's key material and the pool's labels changed:
	// the pool's fingerprint and user data change, so its launch template does and the group rolls;
	// no machine's config changes, so no instance is replaced.
	changed := bytes.Replace(src, []byte(`labels   = { "liftoff.dev/pool" = "general" }`), []byte(`labels   = { "liftoff.dev/pool" = "general", "tier" = "batch" }`), 1)
	if bytes.Equal(changed, src) {
		t.Fatal("cluster.hcl no longer labels the general pool as this test expects")
	}
	_, all2, assets2 := renderExample(t, specPath, changed, assets)
	again := apply(assets2)
	pool2 := again.Pools.Value["general"]
	if pool2.Fingerprint == pool.Fingerprint || pool2.UserData == pool.UserData {
		t.Errorf("pool general: fingerprint (%s) or user data unchanged after its labels changed", pool2.Fingerprint)
	}
	if pool2.Fingerprint != pool2.Object.SHA512 {
		t.Errorf("pool general: after the change, fingerprint %s is not the uploaded object's sha512 %s", pool2.Fingerprint, pool2.Object.SHA512)
	}
	if env := testcluster.FileText(t, testcluster.ParseIgnition(t, readFile(t, pool2.Object.Source)), "/etc/kubernetes/kubelet.env"); !strings.Contains(env, "tier=batch") {
		t.Error("pool general: the re-rendered config does not carry the new label")
	}
	for _, name := range names {
		if again.Fingerprints.Value[name] != outputs.Fingerprints.Value[name] || again.UserData.Value[name] != outputs.UserData.Value[name] {
			t.Errorf("%s: its fingerprint or user data changed with the pool's labels", name)
		}
		for _, p := range []string{"aws/ignition/" + name + ".ign", "aws/user-data/" + name + ".ign"} {
			if !bytes.Equal(all.Get(p).Data, all2.Get(p).Data) {
				t.Errorf("%s changed with the pool's labels", p)
			}
		}
	}
}

// renderExample renders a spec as the CLI does, reusing the key material of existing (an output
// directory, or ""), and writes it to a new output directory.
func renderExample(t *testing.T, path string, src []byte, existing string) (*spec.Cluster, *generator.Assets, string) {
	t.Helper()
	c, diags := spec.Parse(src, path)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	opts := generator.Options{Now: testcluster.Now}
	if existing != "" {
		opts.Existing = os.DirFS(existing)
	}
	all := testcluster.RenderWith(t, full, opts).Assets
	dir := filepath.Join(t.TempDir(), "assets")
	if err := outdir.Write(dir, all); err != nil {
		t.Fatal(err)
	}
	return full, all, dir
}

// checkPointer checks user data that terraform hands a launch template: within EC2's limit, the
// rendered file, and a pointer to the object terraform uploads, verified by terraform's own sha512 of it.
func checkPointer(t *testing.T, what string, userData, rendered []byte, bucket string, o object) {
	t.Helper()
	if len(userData) >= aws.MaxUserData {
		t.Errorf("%s: user data is %d bytes, EC2 takes less than %d", what, len(userData), aws.MaxUserData)
	}
	if !bytes.Equal(userData, rendered) {
		t.Errorf("%s: user data handed to the launch template is not the rendered user data", what)
	}
	replace := testcluster.ParseIgnition(t, userData).Ignition.Config.Replace
	if want := "s3://" + bucket + "/" + o.Key; replace.Source == nil || *replace.Source != want {
		t.Errorf("%s: user data fetches %v, but terraform uploads the object to %s", what, replace.Source, want)
	}
	if replace.Verification.Hash == nil || *replace.Verification.Hash != "sha512-"+o.SHA512 {
		t.Errorf("%s: user data verifies %v, but terraform's filesha512 of the uploaded file is %s", what, replace.Verification.Hash, o.SHA512)
	}
}

// checkPoolResources reads main.tf for how it builds a pool's autoscaling group, since the AWS
// provider cannot plan without AWS: one launch template, group and object per pool of the module,
// the pool's user data in the template, the fingerprint on it, the template's latest version in
// the group, and a rolling instance refresh.
func checkPoolResources(t *testing.T, mainTF []byte) {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCL(mainTF, "main.tf")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	body := f.Body.(*hclsyntax.Body)
	text := func(b *hclsyntax.Body, attr string) string {
		if b == nil {
			return ""
		}
		a, ok := b.Attributes[attr]
		if !ok {
			return ""
		}
		r := a.Expr.Range()
		return string(mainTF[r.Start.Byte:r.End.Byte])
	}
	find := func(b *hclsyntax.Body, typ string, labels ...string) *hclsyntax.Body {
		for _, inner := range b.Blocks {
			if inner.Type == typ && slices.Equal(inner.Labels, labels) {
				return inner.Body
			}
		}
		return nil
	}
	if pools := text(find(body, "locals"), "pools"); pools != "module.liftoff.pools" {
		t.Fatalf("main.tf: local.pools is %q, want module.liftoff.pools", pools)
	}
	want := []struct {
		path        []string
		attr, value string
	}{
		{[]string{"aws_s3_object", "pool"}, "for_each", "local.pools"},
		{[]string{"aws_s3_object", "pool"}, "key", "each.value.object.key"},
		{[]string{"aws_s3_object", "pool"}, "source", "each.value.object.source"},
		{[]string{"aws_s3_object", "pool"}, "source_hash", "each.value.object.sha512"},
		{[]string{"aws_launch_template", "pool"}, "for_each", "local.pools"},
		{[]string{"aws_launch_template", "pool"}, "user_data", "each.value.user_data"},
		{[]string{"aws_launch_template", "pool"}, "instance_type", "each.value.instance_type"},
		{[]string{"aws_autoscaling_group", "pool"}, "for_each", "local.pools"},
		{[]string{"aws_autoscaling_group", "pool"}, "min_size", "each.value.min_size"},
		{[]string{"aws_autoscaling_group", "pool"}, "desired_capacity", "each.value.desired_capacity"},
		{[]string{"aws_autoscaling_group", "pool"}, "max_size", "each.value.max_size"},
		{[]string{"aws_autoscaling_group", "pool", "launch_template"}, "id", "aws_launch_template.pool[each.key].id"},
		{[]string{"aws_autoscaling_group", "pool", "launch_template"}, "version", "aws_launch_template.pool[each.key].latest_version"},
		{[]string{"aws_autoscaling_group", "pool", "instance_refresh"}, "strategy", `"Rolling"`},
	}
	for _, w := range want {
		b := find(body, "resource", w.path[0], w.path[1])
		for _, nested := range w.path[2:] {
			if b != nil {
				b = find(b, nested)
			}
		}
		if got := text(b, w.attr); got != w.value {
			t.Errorf("main.tf: %s.%s is %q, want %s", strings.Join(w.path, "."), w.attr, got, w.value)
		}
	}
	tags := text(find(body, "resource", "aws_launch_template", "pool"), "tags")
	if !strings.Contains(tags, `"liftoff.dev/config-sha512" = each.value.fingerprint`) {
		t.Errorf("main.tf: the pools' launch templates do not carry the fingerprint as a tag: tags = %s", tags)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sorted(out)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
