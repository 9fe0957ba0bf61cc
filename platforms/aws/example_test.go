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

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/aws"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/spec"
)

const exampleDir = "../../examples/aws"

// TestAWSExample checks examples/aws with the real terraform: the configuration is formatted, and
// its liftoff module, applied to the rendered cluster.hcl, hands the AWS resources user data within
// EC2's limit whose hashes are those terraform computes for the objects it uploads. The AWS resources
// themselves need AWS's APIs, which are not reachable here: they are not applied.
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

	c, diags := spec.ReadFile(filepath.Join(exampleDir, "cluster.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := generator.Render(full, generator.Options{Now: testcluster.Now})
	if err != nil {
		t.Fatal(err)
	}
	r := testcluster.RenderPlatform(t, full, res.Assets)
	assets := filepath.Join(t.TempDir(), "assets")
	all := r.All()
	if err := outdir.Write(assets, all); err != nil {
		t.Fatal(err)
	}

	// Every module output that main.tf uses exists.
	module := string(readFile(t, filepath.Join(exampleDir, "liftoff", "main.tf")))
	for _, m := range regexp.MustCompile(`module\.liftoff\.(\w+)`).FindAllStringSubmatch(string(readFile(t, filepath.Join(exampleDir, "main.tf"))), -1) {
		if !strings.Contains(module, `output "`+m[1]+`"`) {
			t.Errorf("main.tf uses module.liftoff.%s, which liftoff/main.tf does not output", m[1])
		}
	}

	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	tf(work, "init", "-input=false", "-no-color")
	tf(work, "apply", "-auto-approve", "-input=false", "-no-color", "-var", "assets_dir="+assets)
	var outputs struct {
		UserData     struct{ Value map[string]string } `json:"user_data"`
		Fingerprints struct{ Value map[string]string }
		Objects      struct {
			Value map[string]struct{ Key, Source, SHA512 string }
		}
		Controllers struct {
			Value map[string]struct {
				IP         string
				EtcdVolume aws.EtcdVolume `json:"etcd_volume"`
			}
		}
		Bucket struct{ Value string }
	}
	if err := json.Unmarshal(tf(work, "output", "-json"), &outputs); err != nil {
		t.Fatal(err)
	}

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
		if len(userData) >= aws.MaxUserData {
			t.Errorf("%s: user data is %d bytes, EC2 takes less than %d", name, len(userData), aws.MaxUserData)
		}
		if !bytes.Equal(userData, all.Get("aws/user-data/"+name+".ign").Data) {
			t.Errorf("%s: user data handed to the launch template is not aws/user-data/%s.ign", name, name)
		}
		object := outputs.Objects.Value[name]
		replace := testcluster.ParseIgnition(t, userData).Ignition.Config.Replace
		if want := "s3://" + outputs.Bucket.Value + "/" + object.Key; replace.Source == nil || *replace.Source != want {
			t.Errorf("%s: user data fetches %v, but terraform uploads the object to %s", name, replace.Source, want)
		}
		if replace.Verification.Hash == nil || *replace.Verification.Hash != "sha512-"+object.SHA512 {
			t.Errorf("%s: user data verifies %v, but terraform's filesha512 of the uploaded file is %s", name, replace.Verification.Hash, object.SHA512)
		}
		if outputs.Fingerprints.Value[name] != object.SHA512 {
			t.Errorf("%s: launch template fingerprint %s is not the uploaded object's sha512", name, outputs.Fingerprints.Value[name])
		}
		if !bytes.Equal(readFile(t, object.Source), all.Get("aws/ignition/"+name+".ign").Data) {
			t.Errorf("%s: terraform uploads %s, not the rendered object", name, object.Source)
		}
	}
	for name, ctl := range outputs.Controllers.Value {
		if ctl.EtcdVolume.Device != "/dev/xvdf" || ctl.EtcdVolume.Size != 20 {
			t.Errorf("%s: etcd volume %+v, want /dev/xvdf of 20 GiB as cluster.hcl says", name, ctl.EtcdVolume)
		}
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
