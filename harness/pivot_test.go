package harness_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// selfHosted edits testdata/cluster.hcl into a self-hosted cluster with the first controllers
// of it and worker-1.
func selfHosted(controllers int) func(string) string {
	return func(src string) string {
		src = strings.Replace(src, `control_plane      = "static"`, `control_plane      = "self-hosted"`, 1)
		for i := 3; i > controllers; i-- {
			src = regexp.MustCompile(`(?s)  controller "controller-`+string(rune('0'+i))+`" \{.*?\n  \}\n`).ReplaceAllString(src, "")
		}
		return regexp.MustCompile(`(?s)  worker "worker-2" \{.*?\n  \}\n`).ReplaceAllString(src, "")
	}
}

// TestPivot boots self-hosted clusters, whose first controller's kubelet starts the bootstrap
// control plane from static pods, writes an object through the bootstrap API, and runs the pivot:
// the self-hosted control plane is created through the bootstrap API and waited for, the
// bootstrap one removed by the host agent, and a client calling the API through the endpoint all
// along sees no failed request. One controller is the hard case: its bootstrap and self-hosted
// apiservers share one address and port, and nothing else serves the API. A static cluster of one
// controller goes through the same pivot minus the teardown (TestCluster runs it on three).
func TestPivot(t *testing.T) {
	for _, controllers := range []int{1, 3} {
		t.Run(fmt.Sprintf("self-hosted-%d", controllers), func(t *testing.T) {
			testPivotSelfHosted(t, controllers)
		})
	}
	t.Run("bootstrap-machine", func(t *testing.T) {
		testPivotFromBootstrapMachine(t)
	})
	t.Run("static-1", func(t *testing.T) {
		c, client := bootOnly(t, staticOf(selfHosted(1)))
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
		defer cancel()
		report := pivot(t, c, ctx)
		if report.Mode != bootstrap.ModeStatic || report.Handover.Failed != 0 || report.ControlPlaneReady.IsZero() {
			t.Errorf("static pivot: mode %q, control plane Ready at %v, hand-over %s", report.Mode, report.ControlPlaneReady, report.Handover)
		}
		var stages []string
		for _, s := range report.Stages {
			stages = append(stages, string(s.Stage)+" "+s.Result)
		}
		if got, want := strings.Join(stages, ", "), "wait-for-api done, namespaces done, crds done, manifests done, control-plane done, verify done"; got != want {
			t.Errorf("static stages: %s, want %s", got, want)
		}
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "tier=control-plane"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if !harness.PodReady(&p) {
				t.Errorf("control-plane pod %s is not Ready after the pivot", p.Name)
			}
		}
		if len(pods.Items) != 3 {
			t.Errorf("%d control-plane pods, want 3", len(pods.Items))
		}
	})
}

// superAdminClient is a client with the break-glass credential: before the pivot binds the admins'
// group, the admin kubeconfig is refused, as it is on a user's cluster.
func superAdminClient(t testing.TB, c *harness.Cluster) kubernetes.Interface {
	t.Helper()
	cfg, err := c.SuperAdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// writeThroughBootstrapAPI writes a ConfigMap as soon as the bootstrap API takes it, for a test to
// find after the pivot. Before the pivot only the break-glass credential may write.
func writeThroughBootstrapAPI(t *testing.T, ctx context.Context, c *harness.Cluster) *corev1.ConfigMap {
	t.Helper()
	client := superAdminClient(t, c)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written-before-the-pivot", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	for {
		_, err := client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return cm
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the bootstrap API never took a write: %v", err)
		case <-time.After(time.Second):
		}
	}
}

// withBootstrapMachine adds a bootstrap machine, at .5 of the cluster's network, to a spec.
func withBootstrapMachine(edit func(string) string) func(string) string {
	return func(s string) string {
		s = edit(s)
		m := regexp.MustCompile(`ip = "(\d+\.\d+\.\d+\.)11"`).FindStringSubmatch(s)
		return strings.Replace(s, `  controller "controller-1" {`, `  bootstrap "bootstrap" {
    ip = "`+m[1]+`5"
  }
  controller "controller-1" {`, 1)
	}
}

// testPivotFromBootstrapMachine pivots a self-hosted cluster whose bootstrap control plane and a
// temporary etcd member run on a separate bootstrap machine (step 3): the controller's etcd member
// takes the data over through raft, the temporary member is removed, and once the bootstrap
// machine is powered off for good the cluster serves on, with what was written before the pivot.
func testPivotFromBootstrapMachine(t *testing.T) {
	c, client := bootOnly(t, withBootstrapMachine(selfHosted(1)))
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	before := writeThroughBootstrapAPI(t, ctx, c)
	report := pivot(t, c, ctx)
	var stages []string
	for _, s := range report.Stages {
		stages = append(stages, string(s.Stage)+" "+s.Result)
	}
	if got, want := strings.Join(stages, ", "), "wait-for-api done, namespaces done, crds done, manifests done, control-plane done, teardown done, etcd done, verify done"; got != want {
		t.Errorf("stages: %s, want %s", got, want)
	}
	if report.Handover.Failed != 0 {
		t.Errorf("hand-over: %s", report.Handover)
	}
	t.Logf("hand-over: %s", report.Handover)
	members, err := c.EtcdMembers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Name != "controller-1" || !members[0].Healthy {
		t.Errorf("etcd members after the pivot: %+v, want controller-1 alone, healthy", members)
	}
	checkPivoted(t, c, client, 1)

	// The bootstrap machine goes for good; the cluster serves on.
	c.Machine("bootstrap").Stop()
	if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, before.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the object written through the bootstrap API, with the bootstrap machine gone: %v", err)
	}
	after := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written-after-the-pivot", Namespace: "default"}}
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, after, metav1.CreateOptions{}); err != nil {
		t.Errorf("writing with the bootstrap machine gone: %v", err)
	}
}

// staticOf turns an edit that makes a self-hosted spec into one that makes a static spec.
func staticOf(edit func(string) string) func(string) string {
	return func(s string) string {
		return strings.Replace(edit(s), `control_plane      = "self-hosted"`, `control_plane      = "static"`, 1)
	}
}

func testPivotSelfHosted(t *testing.T, controllers int) {
	c, client := bootOnly(t, selfHosted(controllers))
	ctx := t.Context()

	// Step 1: the bootstrap API serves; an object written through it must survive the pivot.
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	before := writeThroughBootstrapAPI(t, waitCtx, c)

	if controllers == 1 {
		// A self-hosted component that can never become Ready: the pivot fails naming it, and
		// tears nothing down.
		broken := brokenCopy(t, c.Dir, "kube-scheduler")
		_, err := bootstrap.Run(waitCtx, bootstrap.Options{Dir: broken, StageTimeouts: map[bootstrap.Stage]time.Duration{bootstrap.StageControlPlane: time.Minute},
			Progress: func(e bootstrap.Event) {
				t.Logf("broken bootstrap %6.1fs: %s %s %s %s", e.Elapsed.Seconds(), e.Stage, e.Object, e.Result, e.Detail)
			}})
		if err == nil || !strings.Contains(err.Error(), "stage control-plane") || !strings.Contains(err.Error(), "pod kube-system/kube-scheduler-") ||
			!strings.Contains(err.Error(), "liftoff.test/no-such-image") {
			t.Fatalf("pivot with a scheduler that cannot start: %v; want an error naming the stage, the pod and its image", err)
		}
		t.Logf("the failed pivot said: %v", err)
		// It names the likeliest cause and leaves a diagnosis beside the output directory.
		if !strings.Contains(err.Error(), "likely cause:") || !strings.Contains(err.Error(), "diagnosis written to "+bootstrap.DiagnosisDir(broken)) {
			t.Errorf("the failed pivot's error names no cause or diagnosis: %v", err)
		}
		bundles, _ := filepath.Glob(filepath.Join(bootstrap.DiagnosisDir(broken), "*", "pods.txt"))
		if len(bundles) != 1 {
			t.Errorf("diagnosis bundles: %v", bundles)
		} else if pods, _ := os.ReadFile(bundles[0]); !strings.Contains(string(pods), "kube-scheduler-") {
			t.Errorf("the diagnosis's pods.txt does not list the scheduler:\n%s", pods)
		}
		pods, _ := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
		bootstrapPods := 0
		for _, p := range pods.Items {
			if strings.HasPrefix(p.Name, generator.BootstrapPodPrefix) {
				bootstrapPods++
			}
		}
		if bootstrapPods != 3 {
			t.Errorf("after a failed pivot %d bootstrap pods run, want 3: nothing may be torn down", bootstrapPods)
		}
	}
	stopOwnProbe := func() {}
	if controllers == 3 {
		// Interrupted at the start of every stage (cancelled in process), once killed with
		// SIGKILL as a process, and once by a reboot of the bootstrap control plane's machine,
		// the pivot converges when run again. A client of the test's own
		// calls the API through the endpoint all the while: the hand-over happens in one of the
		// interrupted runs.
		// A reboot of the only machine serving the API takes the API away by itself, not by the
		// pivot: failures while it reboots and until the API answers again are counted apart.
		// The probe calls with the break-glass credential, the only one the API takes before the
		// first run binds the admins' group.
		probeClient := superAdminClient(t, c)
		probeCtx, stopProbe := context.WithCancel(waitCtx)
		var probeMu sync.Mutex
		var requests, failed, duringReboot int
		rebooting := false
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			for probeCtx.Err() == nil {
				_, err := probeClient.CoreV1().Namespaces().Get(probeCtx, "kube-system", metav1.GetOptions{})
				if probeCtx.Err() != nil {
					break
				}
				probeMu.Lock()
				requests++
				switch {
				case err != nil && rebooting:
					duringReboot++
				case err != nil:
					failed++
					t.Logf("probe: %v", err)
				}
				probeMu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
		// The probe ends with the pivot, before the tests that take the API away on purpose.
		var once sync.Once
		stopOwnProbe = func() {
			once.Do(func() {
				stopProbe()
				<-probeDone
				t.Logf("the test's own client: %d requests through the endpoint, %d failed, %d more while the bootstrap machine rebooted", requests, failed, duringReboot)
				if failed != 0 || requests < 10 {
					t.Errorf("the test's own client: %d of %d requests failed during the interrupted pivots", failed, requests)
				}
			})
		}
		defer stopOwnProbe()
		reboot := func(m *harness.Machine) {
			probeMu.Lock()
			rebooting = true
			probeMu.Unlock()
			if err := m.Reboot(); err != nil {
				t.Fatal(err)
			}
			for {
				if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(waitCtx); err == nil {
					break
				}
				select {
				case <-waitCtx.Done():
					t.Fatal("the API did not come back after the reboot")
				case <-time.After(500 * time.Millisecond):
				}
			}
			probeMu.Lock()
			rebooting = false
			probeMu.Unlock()
			t.Logf("%s, running the bootstrap control plane, rebooted; the API answers again", m.Name)
		}
		for _, st := range []bootstrap.Stage{bootstrap.StageNamespaces, bootstrap.StageCRDs, bootstrap.StageManifests,
			bootstrap.StageControlPlane, bootstrap.StageTeardown, bootstrap.StageVerify} {
			ictx, stop := context.WithCancel(waitCtx)
			_, err := bootstrap.Run(ictx, bootstrap.Options{Dir: c.Dir, Progress: func(e bootstrap.Event) {
				// The teardown is interrupted once its request to the agent is out.
				if e.Stage == st && e.Result == bootstrap.ResultStarted && (st != bootstrap.StageTeardown || e.Object != "") {
					stop()
				}
			}})
			stop()
			if err == nil {
				t.Fatalf("the pivot interrupted at %s did not fail", st)
			}
			if !strings.Contains(err.Error(), "bootstrap stage "+string(st)+":") {
				t.Errorf("the pivot interrupted at %s stopped elsewhere: %v", st, err)
			}
			t.Logf("interrupted at %s: %v", st, err)
			if st == bootstrap.StageManifests {
				killPivotDuring(t, c, waitCtx, string(bootstrap.StageControlPlane))
				// And the machine running the bootstrap control plane reboots mid-pivot: its
				// static pods come back from its disk.
				reboot(c.Machine("controller-1"))
			}
		}
	}

	report := pivot(t, c, waitCtx)
	stopOwnProbe()
	if report.Mode != bootstrap.ModeSelfHosted || report.AlreadyBootstrapped {
		t.Errorf("report: mode %q, already bootstrapped %v", report.Mode, report.AlreadyBootstrapped)
	}
	if h := report.Handover; h.Failed != 0 || h.Requests < 10 {
		t.Errorf("hand-over: %s; want no failed request", h)
	}
	t.Logf("hand-over: %s", report.Handover)
	t.Logf("pivot: %s, control plane Ready %s before its end", report.End.Sub(report.Start).Round(100*time.Millisecond),
		report.End.Sub(report.ControlPlaneReady).Round(100*time.Millisecond))

	checkPivoted(t, c, client, controllers)
	if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, before.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the object written through the bootstrap API: %v", err)
	}

	t.Run("again", func(t *testing.T) {
		again := pivot(t, c, waitCtx)
		if !again.AlreadyBootstrapped {
			t.Error("a second pivot did not find the cluster bootstrapped")
		}
	})
	if controllers == 3 {
		t.Run("placement", func(t *testing.T) { testPlacement(t, c, client) })
		t.Run("cis-benchmark", func(t *testing.T) { testCISBenchmark(t, c, client) })
		t.Run("failures", func(t *testing.T) { testFailures(t, c, client) })
	}
	if controllers == 1 {
		t.Run("self-healing", func(t *testing.T) { testSelfHealingOneController(t, c, client) })
	}
}

// killPivotDuring runs `liftoff bootstrap` and kills it with SIGKILL once it reports stage started.
func killPivotDuring(t *testing.T, c *harness.Cluster, ctx context.Context, stage string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "liftoff")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/liftoff-k8s/liftoff/cmd/liftoff").CombinedOutput(); err != nil {
		t.Fatalf("building liftoff: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "bootstrap", "--dir", c.Dir, "--output", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(stdout)
	for {
		var e bootstrap.Event
		if err := dec.Decode(&e); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("liftoff bootstrap ended before stage %s started: %v", stage, err)
		}
		if string(e.Stage) == stage && e.Result == bootstrap.ResultStarted {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	err = cmd.Wait()
	t.Logf("liftoff bootstrap killed during %s: %v", stage, err)
}

// brokenCopy copies the output directory dir with the image of a self-hosted component's
// Deployment replaced by one that no machine has.
func brokenCopy(t *testing.T, dir, component string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	if err := os.CopyFS(out, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	assets, err := outdir.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range assets.Files {
		if strings.HasSuffix(a.Path, "-"+component+".yaml") && strings.HasPrefix(a.Path, generator.OutManifestDir+"/") {
			re := regexp.MustCompile(`image: "[^"]*"`)
			assets.Files[i].Data = re.ReplaceAll(a.Data, []byte(`image: "liftoff.test/no-such-image:1"`))
		}
	}
	if err := outdir.Write(out, assets); err != nil {
		t.Fatal(err)
	}
	return out
}

// bootOnly renders testdata/cluster.hcl changed by edit (nil: as it is) and boots it, without
// bootstrapping. The cluster is closed when the test ends, and the test fails if anything the
// harness started survives that.
func bootOnly(t testing.TB, edit func(string) string) (*harness.Cluster, kubernetes.Interface) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	renderTestClusterOf(t, out, edit)
	c, err := harness.Boot(t.Context(), harness.Options{Dir: out, Work: filepath.Join(dir, "work"), Logf: t.Logf, Images: []string{testImage}})
	t.Cleanup(func() {
		if t.Failed() && c != nil {
			dumpLogs(t, c)
		}
		if c == nil {
			return
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if left := c.Leftovers(); len(left) > 0 {
			t.Errorf("processes left after Close: %v", left)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := c.AdminConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c, kubernetes.NewForConfigOrDie(cfg)
}

// pivot runs bootstrap on the cluster, logging its progress.
func pivot(t testing.TB, c *harness.Cluster, ctx context.Context) *bootstrap.Report {
	t.Helper()
	report, err := bootstrap.Run(ctx, bootstrap.Options{Dir: c.Dir, Progress: func(e bootstrap.Event) {
		t.Logf("bootstrap %6.1fs: %s %s %s %s %s", e.Elapsed.Seconds(), e.Stage, e.File, e.Object, e.Result, e.Detail)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// checkPivoted checks what a finished self-hosted pivot leaves: no bootstrap pod in the API or
// file on any controller, a self-hosted apiserver Ready on every controller, and a complete record.
func checkPivoted(t *testing.T, c *harness.Cluster, client kubernetes.Interface, controllers int) {
	t.Helper()
	ctx := t.Context()
	bootstrapPods, apiservers, err := harness.PivotedControlPlane(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(bootstrapPods) > 0 {
		t.Errorf("bootstrap pods are still there: %v", bootstrapPods)
	}
	if apiservers != controllers {
		t.Errorf("%d self-hosted apiserver pods, want %d", apiservers, controllers)
	}
	for _, m := range c.Machines() {
		files, _ := filepath.Glob(filepath.Join(m.Root, generator.HostStaticPodDir, "*"))
		for _, f := range files {
			if strings.HasPrefix(filepath.Base(f), generator.BootstrapPodPrefix) {
				t.Errorf("%s still has %s", m.Name, f)
			}
		}
	}
	rec, err := bootstrap.ReadRecord(ctx, client)
	if err != nil || rec == nil || rec.Status != bootstrap.StatusComplete {
		t.Errorf("record %+v, err %v", rec, err)
	}
	if _, err := os.Stat(c.Dir); errors.Is(err, os.ErrNotExist) {
		t.Error("the output directory is gone")
	}
}
