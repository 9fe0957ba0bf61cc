package harness_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
)

// apiServerCheckpoint is the checkpoint of the self-hosted apiserver DaemonSet's pods.
const apiServerCheckpoint = "kube-system~daemonset~kube-apiserver"

// oneControllerScenarios are the failure table's rows for a pivoted self-hosted cluster of one
// controller, where nothing else serves the API: its only apiserver killed, its only apiserver pod
// deleted, and the controller rebooted. The checkpointer brings the apiserver back where the
// kubelet alone could not, and steps aside once the self-hosted one runs again.
var oneControllerScenarios = []failureScenario{
	{name: "5 the only apiserver dies (SIGKILL)", metric: "s-only-apiserver-dies", maxFailed: 1, inject: onlyAPIServerDies},
	{name: "5 the only apiserver's pod is deleted", metric: "s-only-apiserver-pod-deleted", maxFailed: 1, inject: onlyAPIServerPodDeleted},
	{name: "6 the single controller reboots (self-hosted)", metric: "s-single-controller-reboots", maxFailed: 1, inject: singleControllerReboots},
}

func testSelfHealingOneController(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	waitCheckpointSaved(t, c)
	for _, s := range oneControllerScenarios {
		t.Run(scenarioSlug(s.name), func(t *testing.T) {
			runFailure(t, failureCluster{c, client}, s)
		})
	}
}

// BenchmarkSelfHealingOneController measures the one-controller rows of the failure table.
func BenchmarkSelfHealingOneController(b *testing.B) {
	c, client := bootOnly(b, selfHosted(1))
	ctx, cancel := context.WithTimeout(b.Context(), 15*time.Minute)
	pivot(b, c, ctx)
	cancel()
	waitCheckpointSaved(b, c)
	sums := map[string]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range oneControllerScenarios {
			sums[s.metric] += runFailure(b, failureCluster{c, client}, s).recovery
		}
	}
	b.StopTimer()
	for _, s := range oneControllerScenarios {
		b.ReportMetric(sums[s.metric].Seconds()/float64(b.N), s.metric)
	}
}

// checkpointPaths are where controller m keeps the apiserver's checkpoint, and where it goes when active.
func checkpointPaths(m *harness.Machine) (saved, active string) {
	return filepath.Join(m.Root, generator.HostCheckpointDir, apiServerCheckpoint+".yaml"),
		filepath.Join(m.Root, generator.HostStaticPodDir, "checkpoint-"+apiServerCheckpoint+".yaml")
}

// waitCheckpointSaved waits until the first controller's checkpointer has saved the apiserver,
// readable by root only.
func waitCheckpointSaved(t testing.TB, c *harness.Cluster) {
	saved, _ := checkpointPaths(c.Controllers()[0])
	untilTrue(t, t.Context(), 3*time.Minute, "the checkpointer saves the apiserver", func() (bool, string) {
		_, err := os.Stat(saved)
		return err == nil, "no " + saved
	})
	if fi, err := os.Stat(saved); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v, want 0600", fi.Mode().Perm())
	}
}

// watchActive reports, when the returned stop is called, whether the checkpoint at active was
// active at any moment until then.
func watchActive(active string) (stop func() bool) {
	done := make(chan bool)
	quit := make(chan struct{})
	go func() {
		seen := false
		for {
			if _, err := os.Stat(active); err == nil {
				seen = true
			}
			select {
			case <-quit:
				done <- seen
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() bool { close(quit); return <-done }
}

// onlyAPIServerDies kills the only apiserver with SIGKILL: the kubelet restarts it, or the
// checkpoint serves until it does.
func onlyAPIServerDies(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Controllers()[0]
	_, active := checkpointPaths(m)
	pod := apiServerPod(t, ctx, fc.client, "")
	activated := watchActive(active)
	start := time.Now()
	if err := m.KillContainer(ctx, "kube-system", pod.Name, "kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	waitAPIServerBack(t, ctx, fc.client, pod.Name, restarts(pod))
	out := outcome{recovery: time.Since(start), note: "the kubelet restarted it"}
	if activated() {
		out.note = "the checkpoint ran until the kubelet restarted it"
		checkpointStepsAside(t, ctx, active)
	}
	return out
}

// onlyAPIServerPodDeleted deletes the only apiserver's pod. Without a checkpoint this is fatal: the
// deletion stops the only apiserver, and the DaemonSet controller cannot make a new pod without an API.
func onlyAPIServerPodDeleted(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Controllers()[0]
	_, active := checkpointPaths(m)
	pod := apiServerPod(t, ctx, fc.client, "")
	activated := watchActive(active)
	start := time.Now()
	if err := fc.client.CoreV1().Pods("kube-system").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	successor := waitAPIServerBack(t, ctx, fc.client, pod.Name, -1)
	recovered := time.Since(start)
	if !activated() {
		t.Error("the apiserver came back without its checkpoint being activated")
	}
	checkpointStepsAside(t, ctx, active)
	return outcome{recovery: recovered, note: "the checkpoint served until the DaemonSet's new pod " + successor + " ran"}
}

// singleControllerReboots reboots the only controller: the checkpoint starts the apiserver, the
// kubelet then the self-hosted control plane, and no bootstrap control plane comes back.
func singleControllerReboots(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Controllers()[0]
	_, active := checkpointPaths(m)
	pod := apiServerPod(t, ctx, fc.client, "")
	activated := watchActive(active)
	start := time.Now()
	if err := m.Reboot(); err != nil {
		t.Fatal(err)
	}
	waitAPIServerBack(t, ctx, fc.client, pod.Name, restarts(pod))
	untilTrue(t, ctx, 5*time.Minute, "the controller-manager and scheduler lead again", func() (bool, string) {
		leaders, err := harness.Leaders(ctx, fc.client)
		if err != nil {
			return false, err.Error()
		}
		for _, l := range leaders {
			if !l.Current || l.Renewed.Before(start) {
				return false, l.Component + " lease not renewed since the reboot"
			}
		}
		return true, ""
	})
	recovered := time.Since(start)
	if !activated() {
		t.Error("the controller came back without the apiserver's checkpoint being activated")
	}
	if files, _ := filepath.Glob(filepath.Join(m.Root, generator.HostStaticPodDir, generator.BootstrapPodPrefix+"*")); len(files) > 0 {
		t.Errorf("bootstrap static pods are back: %v", files)
	}
	checkpointStepsAside(t, ctx, active)
	return outcome{recovery: recovered, note: "the checkpoint started the apiserver; no new bootstrap"}
}

// apiServerPod returns the self-hosted apiserver pod (not a checkpoint), other than not, once it is Ready.
func apiServerPod(t testing.TB, ctx context.Context, client kubernetes.Interface, not string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	untilTrue(t, ctx, 5*time.Minute, "a Ready self-hosted apiserver pod", func() (bool, string) {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-apiserver"})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for i := range pods.Items {
			p := &pods.Items[i]
			seen = append(seen, p.Name+" "+string(p.Status.Phase))
			if p.Name != not && p.DeletionTimestamp == nil && harness.PodReady(p) {
				found = p
				return true, ""
			}
		}
		return false, "pods: " + strings.Join(seen, ", ")
	})
	return found
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// waitAPIServerBack waits until the API is ready through the endpoint and the self-hosted apiserver
// pod runs again: the same pod restarted more than restartsBefore times, or (restartsBefore < 0) a
// pod other than the one named. It returns that pod's name.
func waitAPIServerBack(t testing.TB, ctx context.Context, client kubernetes.Interface, name string, restartsBefore int32) string {
	t.Helper()
	var back string
	untilTrue(t, ctx, 10*time.Minute, "the self-hosted apiserver runs again and the API is ready", func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx); err != nil {
			return false, "/readyz: " + err.Error()
		}
		pods, err := client.CoreV1().Pods("kube-system").List(rctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-apiserver"})
		if err != nil {
			return false, err.Error()
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || !harness.PodReady(p) {
				continue
			}
			if (restartsBefore < 0 && p.Name != name) || (restartsBefore >= 0 && p.Name == name && restarts(p) > restartsBefore) {
				back = p.Name
				return true, ""
			}
		}
		return false, "no such apiserver pod Ready yet"
	})
	return back
}

// checkpointStepsAside waits until the active checkpoint is removed, the self-hosted apiserver
// having run Ready for the checkpointer's grace period.
func checkpointStepsAside(t testing.TB, ctx context.Context, active string) {
	t.Helper()
	untilTrue(t, ctx, 3*time.Minute, "the active checkpoint is removed once the self-hosted apiserver runs", func() (bool, string) {
		_, err := os.Stat(active)
		return os.IsNotExist(err), active + " is still there"
	})
}

// untilTrue polls cond every 500 ms until it holds, failing the test with cond's last word after within.
func untilTrue(t testing.TB, ctx context.Context, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s: %s", what, within, why)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
