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

// testSelfHealingOneController runs the failure table's rows for a pivoted self-hosted cluster of
// one controller, where nothing else serves the API: its only apiserver killed, its only apiserver
// pod deleted, and the controller rebooted. The checkpointer brings the apiserver back where the
// kubelet alone could not, and steps aside once the self-hosted one runs again.
func testSelfHealingOneController(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	m := c.Machine("controller-1")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	saved := filepath.Join(m.Root, generator.HostCheckpointDir, apiServerCheckpoint+".yaml")
	active := filepath.Join(m.Root, generator.HostStaticPodDir, "checkpoint-"+apiServerCheckpoint+".yaml")
	untilTrue(t, ctx, 3*time.Minute, "the checkpointer saves the apiserver", func() (bool, string) {
		_, err := os.Stat(saved)
		return err == nil, "no " + saved
	})
	if fi, err := os.Stat(saved); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v, want 0600", fi.Mode().Perm())
	}

	// watchActive reports whether the checkpoint became active while the returned stop was pending.
	watchActive := func() (stop func() bool) {
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

	t.Run("5 the only apiserver dies", func(t *testing.T) {
		scenario := "5 the only apiserver dies (SIGKILL)"
		before := writeKeys(t, ctx, client, scenario, 20)
		pod := apiServerPod(t, ctx, client, "")
		activated := watchActive()
		probe := startAPIProbe(ctx, client)
		start := time.Now()
		if err := m.KillContainer(ctx, "kube-system", pod.Name, "kube-apiserver"); err != nil {
			t.Fatal(err)
		}
		waitAPIServerBack(t, ctx, client, pod.Name, restarts(pod))
		recovered := time.Since(start)
		requests, failed := probe.Stop()
		note := "the kubelet restarted it"
		if activated() {
			note = "the checkpoint ran until the kubelet restarted it"
		}
		after := countKeys(t, ctx, client, scenario)
		recordRecovery(recoveryRow{Scenario: scenario, Recovery: recovered, Requests: requests, Failed: failed, KeysBefore: before, KeysAfter: after, Note: note})
		if after != before {
			t.Errorf("%d of %d objects written before the fault are left", after, before)
		}
	})

	t.Run("5 the only apiserver's pod is deleted", func(t *testing.T) {
		// Without a checkpoint this is fatal: the pod's deletion stops the only apiserver, and the
		// DaemonSet controller cannot make a new pod without an API.
		scenario := "5 the only apiserver's pod is deleted"
		before := writeKeys(t, ctx, client, scenario, 20)
		pod := apiServerPod(t, ctx, client, "")
		activated := watchActive()
		probe := startAPIProbe(ctx, client)
		start := time.Now()
		if err := client.CoreV1().Pods("kube-system").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		successor := waitAPIServerBack(t, ctx, client, pod.Name, -1)
		recovered := time.Since(start)
		requests, failed := probe.Stop()
		wasActive := activated()
		after := countKeys(t, ctx, client, scenario)
		recordRecovery(recoveryRow{Scenario: scenario, Recovery: recovered, Requests: requests, Failed: failed, KeysBefore: before, KeysAfter: after,
			Note: "the checkpoint served until the DaemonSet's new pod " + successor + " ran"})
		if !wasActive {
			t.Error("the apiserver came back without its checkpoint being activated")
		}
		if after != before {
			t.Errorf("%d of %d objects written before the fault are left", after, before)
		}
		checkpointStepsAside(t, ctx, active)
	})

	t.Run("6 the single controller reboots", func(t *testing.T) {
		scenario := "6 the single controller reboots (self-hosted)"
		before := writeKeys(t, ctx, client, scenario, 20)
		pod := apiServerPod(t, ctx, client, "")
		activated := watchActive()
		probe := startAPIProbe(ctx, client)
		start := time.Now()
		if err := m.Reboot(); err != nil {
			t.Fatal(err)
		}
		waitAPIServerBack(t, ctx, client, pod.Name, restarts(pod))
		untilTrue(t, ctx, 5*time.Minute, "the controller-manager and scheduler lead again", func() (bool, string) {
			leaders, err := harness.Leaders(ctx, client)
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
		requests, failed := probe.Stop()
		wasActive := activated()
		after := countKeys(t, ctx, client, scenario)
		recordRecovery(recoveryRow{Scenario: scenario, Recovery: recovered, Requests: requests, Failed: failed, KeysBefore: before, KeysAfter: after,
			Note: "the checkpoint started the apiserver; no new bootstrap"})
		if !wasActive {
			t.Error("the controller came back without the apiserver's checkpoint being activated")
		}
		if after != before {
			t.Errorf("%d of %d objects written before the fault are left", after, before)
		}
		files, _ := filepath.Glob(filepath.Join(m.Root, generator.HostStaticPodDir, generator.BootstrapPodPrefix+"*"))
		if len(files) > 0 {
			t.Errorf("bootstrap static pods are back: %v", files)
		}
		checkpointStepsAside(t, ctx, active)
	})
}

// apiServerPod returns the self-hosted apiserver pod (not a checkpoint), other than not, once it is Ready.
func apiServerPod(t *testing.T, ctx context.Context, client kubernetes.Interface, not string) *corev1.Pod {
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
func waitAPIServerBack(t *testing.T, ctx context.Context, client kubernetes.Interface, name string, restartsBefore int32) string {
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
func checkpointStepsAside(t *testing.T, ctx context.Context, active string) {
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
