package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/hostagent"
)

// testSubnet is the /24 testdata/bootstrap-cluster.hcl is written for.
const testSubnet = "10.42.0."

// bootstrapConfig is liftoff_bootstrap for the output directory out, with manifests taken from the
// files as a configuration without liftoff_cluster (a directory `liftoff render` wrote) sets them,
// and more arguments.
func bootstrapConfig(out string, more ...string) string {
	return requiredProviders + fmt.Sprintf(`
locals {
  dir = %q
}

resource "liftoff_bootstrap" "x" {
  dir       = local.dir
  manifests = { for f in fileset(local.dir, "manifests/*") : f => filesha256("${local.dir}/${f}") }
  %s
}
`, out, strings.Join(more, "\n  "))
}

// writeWorkdir makes dir a working directory whose configuration is config.
func writeWorkdir(t *testing.T, dir, config string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// bootstrapStateValues are the values of liftoff_bootstrap.x as `terraform show -json` has them.
type bootstrapStateValues struct {
	Status    string            `json:"status"`
	Mode      string            `json:"mode"`
	Completed *string           `json:"completed"`
	Manifests map[string]string `json:"manifests"`
	Stages    []struct {
		Stage, Start, Result string
		End, Detail          *string
	} `json:"stages"`
	Handover *struct{ Requests, Failed, Retried int } `json:"handover"`
}

// showBootstrap returns liftoff_bootstrap.x from state, nil when there is none, and whether it is tainted.
func showBootstrap(t *testing.T, w *workdir) (values *bootstrapStateValues, tainted bool) {
	t.Helper()
	var doc struct {
		Values *struct {
			RootModule struct {
				Resources []struct {
					Address string               `json:"address"`
					Tainted bool                 `json:"tainted"`
					Values  bootstrapStateValues `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	out := w.must("show", "-json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("terraform show -json: %v\n%s", err, out)
	}
	if doc.Values == nil {
		return nil, false
	}
	for _, r := range doc.Values.RootModule.Resources {
		if r.Address == "liftoff_bootstrap.x" {
			return &r.Values, r.Tainted
		}
	}
	return nil, false
}

// stagesOf lists the stages as "stage=result".
func stagesOf(v *bootstrapStateValues) string {
	var s []string
	for _, st := range v.Stages {
		s = append(s, st.Stage+"="+st.Result)
	}
	return strings.Join(s, " ")
}

// applyUntilInProgress starts `terraform apply` and, once the cluster's record says a bootstrap this
// apply started is in progress, sends sig: SIGINT to terraform alone, as Ctrl-C would, or SIGKILL to its process
// group, the provider with it. It returns terraform's output and exit code.
func applyUntilInProgress(t *testing.T, w *workdir, client kubernetes.Interface, sig syscall.Signal) (string, int) {
	t.Helper()
	cmd := exec.Command(w.tf, "apply", "-auto-approve", "-no-color")
	cmd.Dir, cmd.Env = w.dir, w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for signalled := false; ; {
		select {
		case err := <-done:
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if !signalled {
				t.Fatalf("terraform apply ended (exit %d) before the record said in-progress:\n%s", code, out.String())
			}
			return out.String(), code
		case <-ctx.Done():
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			t.Fatalf("terraform apply was not interrupted in time:\n%s", out.String())
		case <-tick.C:
			if signalled {
				continue
			}
			rec, err := bootstrap.ReadRecord(ctx, client)
			if err != nil || rec == nil || rec.Status != bootstrap.StatusInProgress || len(rec.Stages) == 0 || rec.Stages[0].Start.Before(started) {
				continue
			}
			t.Logf("record in progress at stage %s: sending %v", rec.Stages[len(rec.Stages)-1].Stage, sig)
			pid := cmd.Process.Pid
			if sig == syscall.SIGKILL {
				pid = -pid
			}
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
}

// TestAccBootstrap runs liftoff_bootstrap with the real terraform CLI against a real self-hosted
// cluster of one controller and one worker booted on this machine: an import before bootstrap fails,
// an apply interrupted with Ctrl-C saves what it recorded and one killed outright leaves the
// cluster mid-pivot, the next apply converges, a second plan is empty, a fresh state imports the
// bootstrapped cluster with an empty plan, destroy leaves the cluster answering, and a cluster
// whose record is gone leaves state.
func TestAccBootstrap(t *testing.T) {
	begin := time.Now()
	step := func(format string, args ...any) {
		t.Logf("[%6.1fs] %s", time.Since(begin).Seconds(), fmt.Sprintf(format, args...))
	}
	ctx := t.Context()
	work := t.TempDir()
	out := filepath.Join(work, "out")
	// The output directory is rendered as `liftoff render` would, by the harness, rather than by
	// liftoff_cluster, so that the test is about liftoff_bootstrap alone.
	renderBootstrapCluster(t, out)
	c, err := harness.Boot(ctx, harness.Options{Dir: out, Work: filepath.Join(work, "machines"), Logf: t.Logf})
	t.Cleanup(func() {
		if c == nil {
			return
		}
		if t.Failed() {
			harnessLogs(t, c)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	step("booted")

	first := filepath.Join(work, "tf")
	writeWorkdir(t, first, bootstrapConfig(out))
	w := newWorkdir(t, first)
	logFile := filepath.Join(work, "terraform.log")
	w.env = append(w.env, "TF_LOG_PROVIDER=INFO", "TF_LOG_PATH="+logFile)

	// Before bootstrap the API answers but there is nothing to import.
	waitReady(t, client, 10*time.Minute)
	step("the bootstrap API answers")
	if imp, code := w.run("import", "liftoff_bootstrap.x", out); code == 0 || !strings.Contains(imp, "The cluster has not been bootstrapped") {
		t.Fatalf("import of a cluster never bootstrapped exited %d:\n%s", code, imp)
	}

	// Ctrl-C: the provider's run is cancelled, and what it recorded is saved.
	applied, code := applyUntilInProgress(t, w, client, syscall.SIGINT)
	step("apply interrupted with SIGINT: exit %d", code)
	if code == 0 || !strings.Contains(applied, "Bootstrap interrupted in stage") || !strings.Contains(applied, "Apply again to resume") {
		t.Fatalf("the interrupted apply exited %d without naming the failed stage:\n%s", code, applied)
	}
	if i := strings.Index(applied, "Error: "); i >= 0 {
		t.Logf("the interrupted apply said:\n%s", applied[i:])
	}
	v, tainted := showBootstrap(t, w)
	if v == nil || v.Status != bootstrap.StatusFailed || len(v.Stages) < 2 || v.Stages[len(v.Stages)-1].Result != bootstrap.ResultFailed {
		t.Fatalf("state after the interrupted apply: %+v; want status failed with the stages so far", v)
	}
	step("state after SIGINT: status %s, tainted %v, stages %s", v.Status, tainted, stagesOf(v))

	// SIGKILL: terraform and the provider die mid-pivot; the record says in progress.
	_, code = applyUntilInProgress(t, w, client, syscall.SIGKILL)
	rec, err := bootstrap.ReadRecord(ctx, client)
	if err != nil || rec == nil || rec.Status != bootstrap.StatusInProgress {
		t.Fatalf("after SIGKILL the record is %+v (%v); want in-progress", rec, err)
	}
	step("apply killed with SIGKILL: exit %d; record in progress at %s", code, rec.Stages[len(rec.Stages)-1].Stage)

	// The next apply converges.
	applied = w.must("apply", "-auto-approve")
	v, tainted = showBootstrap(t, w)
	if v == nil || tainted || v.Status != bootstrap.StatusComplete || v.Mode != string(bootstrap.ModeSelfHosted) || v.Completed == nil {
		t.Fatalf("state after the resumed apply: %+v, tainted %v; want a complete self-hosted bootstrap", v, tainted)
	}
	want := []string{"wait-for-api=done", "namespaces=done", "crds=done", "manifests=done", "control-plane=done", "teardown=done", "verify=done"}
	if got := stagesOf(v); got != strings.Join(want, " ") {
		t.Errorf("stages in state: %s; want %s", got, strings.Join(want, " "))
	}
	if v.Handover == nil || v.Handover.Requests == 0 {
		t.Errorf("handover in state: %+v; want the requests made during the pivot", v.Handover)
	}
	if len(v.Manifests) == 0 {
		t.Error("no manifests in state")
	}
	step("resumed apply: status %s, completed %s, stages %s, handover %+v", v.Status, *v.Completed, stagesOf(v), *v.Handover)
	checkPivoted(t, client)
	logs, _ := os.ReadFile(logFile)
	if !bytes.Contains(logs, []byte("stage=teardown")) || !bytes.Contains(logs, []byte("result=done")) {
		t.Errorf("the provider's log does not show the stages' progress")
	}

	if plan, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("second plan is not empty (exit %d):\n%s", code, plan)
	}
	step("second plan empty")

	// A fresh state adopts the bootstrapped cluster.
	second := filepath.Join(work, "tf-import")
	writeWorkdir(t, second, bootstrapConfig(out))
	adopt := newWorkdir(t, second)
	adopt.must("import", "liftoff_bootstrap.x", out)
	if imported, _ := showBootstrap(t, adopt); imported == nil || imported.Status != bootstrap.StatusComplete || stagesOf(imported) != stagesOf(v) ||
		*imported.Completed != *v.Completed {
		t.Errorf("imported state %+v; want what the apply recorded, %+v", imported, v)
	}
	if plan, code := adopt.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after import is not empty (exit %d):\n%s", code, plan)
	}
	step("imported into a fresh state; plan empty")

	// A timeout set after the import only steers later runs: the plan changes it alone.
	writeWorkdir(t, second, bootstrapConfig(out, `timeout = "15m"`))
	plan, code := adopt.run("plan", "-detailed-exitcode")
	if code != 2 || !regexp.MustCompile(`\+ timeout\s+= "15m"`).MatchString(plan) || strings.Contains(plan, "known after apply") {
		t.Fatalf("plan with a timeout added (exit %d):\n%s", code, plan)
	}
	adopt.must("apply", "-auto-approve")
	if after, _ := showBootstrap(t, adopt); after == nil || *after.Completed != *v.Completed {
		t.Errorf("state after adding the timeout: %+v", after)
	}
	if plan, code := adopt.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the timeout was applied is not empty (exit %d):\n%s", code, plan)
	}
	step("timeout added: an update of state alone")

	destroyed := w.must("destroy", "-auto-approve")
	if !strings.Contains(destroyed, "The cluster keeps running") {
		t.Errorf("destroy does not warn that the cluster keeps running:\n%s", destroyed)
	}
	readyz, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil || string(readyz) != "ok" {
		t.Fatalf("after destroy the API's /readyz says %q (%v)", readyz, err)
	}
	step("destroyed; /readyz %s", readyz)

	// The cluster rebuilt: without a record, the resource leaves state and the plan creates it.
	if err := client.CoreV1().ConfigMaps(hostagent.Namespace).Delete(ctx, generator.PivotRecord, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	plan, code = adopt.run("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "liftoff_bootstrap.x will be created") {
		t.Fatalf("plan of a cluster without a bootstrap record (exit %d):\n%s", code, plan)
	}
	step("record removed: the plan creates the resource again")
}

// renderBootstrapCluster renders testdata/bootstrap-cluster.hcl into out on a /24 that no address
// or route of this host covers, so test runs on one host never share addresses.
func renderBootstrapCluster(t *testing.T, out string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "bootstrap-cluster.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := harness.FreeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), testSubnet, strings.TrimSuffix(prefix.Addr().String(), "0"))
	spec := filepath.Join(t.TempDir(), "cluster.hcl")
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := harness.Render(t.Context(), spec, out); err != nil {
		t.Fatal(err)
	}
	t.Logf("test cluster on %s", prefix)
}

// waitReady waits until the API answers /readyz.
func waitReady(t *testing.T, client kubernetes.Interface, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the API did not answer /readyz within %s: %v", d, err)
		case <-time.After(time.Second):
		}
	}
}

// checkPivoted checks in the cluster what a complete self-hosted pivot leaves: no bootstrap pod,
// a self-hosted apiserver.
func checkPivoted(t *testing.T, client kubernetes.Interface) {
	t.Helper()
	bootstrapPods, apiservers, err := harness.PivotedControlPlane(t.Context(), client)
	if err != nil {
		t.Fatal(err)
	}
	if len(bootstrapPods) > 0 {
		t.Errorf("bootstrap pods are still there: %v", bootstrapPods)
	}
	if apiservers != 1 {
		t.Errorf("%d self-hosted apiserver pods, want 1", apiservers)
	}
}

// harnessLogs logs the end of each machine's component logs, for a failed test.
func harnessLogs(t *testing.T, c *harness.Cluster) {
	for _, m := range c.Machines() {
		files, _ := filepath.Glob(filepath.Join(m.Root, "var/log/liftoff-harness/*.log"))
		for _, f := range files {
			data, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if len(lines) > 10 {
				lines = lines[len(lines)-10:]
			}
			rel, _ := filepath.Rel(m.Root, f)
			t.Logf("--- %s:/%s\n%s", m.Name, rel, strings.Join(lines, "\n"))
		}
	}
}
