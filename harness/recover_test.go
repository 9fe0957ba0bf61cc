package harness_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
	liftoffrecover "github.com/liftoff-k8s/liftoff/recovery"
)

// everySchedulerAndControllerManagerDies deletes every controller-manager and scheduler pod: with
// none left, nothing makes new ones, and only `liftoff recover` and the pivot bring them back.
func everySchedulerAndControllerManagerDies(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	start := time.Now()
	zero := int64(0)
	running := func() []string {
		var out []string
		for _, name := range harness.LeaderComponents {
			pods, err := fc.client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=" + name})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if p.Status.Phase == corev1.PodRunning {
					out = append(out, p.Name)
				}
			}
		}
		return out
	}
	// A scheduler still stopping can place the pods a controller-manager still stopping makes in
	// their place: delete until none of either runs, at which point nothing makes or places new ones.
	var quiet time.Time
	for ; quiet.IsZero() || time.Since(quiet) < 15*time.Second; time.Sleep(3 * time.Second) {
		if left := running(); len(left) > 0 {
			quiet = time.Time{}
			for _, name := range []string{"kube-scheduler", "kube-controller-manager"} {
				if err := fc.client.CoreV1().Pods("kube-system").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
					metav1.ListOptions{LabelSelector: "k8s-app=" + name}); err != nil {
					t.Fatal(err)
				}
			}
		} else if quiet.IsZero() {
			quiet = time.Now()
		}
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("controller-managers and schedulers keep coming back: %v", running())
		}
	}
	// The fault is real: none runs again by itself.
	time.Sleep(20 * time.Second)
	if left := running(); len(left) > 0 {
		t.Fatalf("controller-managers or schedulers came back by themselves: %v", left)
	}
	return recoverAndPivot(t, ctx, fc, start, liftoffrecover.Options{Dir: fc.c.Dir})
}

// everyControllerDies powers every controller off at once and on again, their disks kept but their
// checkpoints gone (with them, the controllers heal alone, as the one-controller reboot shows):
// no apiserver starts, and `liftoff recover` rebuilds the bootstrap control plane from etcd. What
// etcd says about the pods from before the loss (Running, Ready) must not fool the pivot.
func everyControllerDies(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	start := time.Now()
	controllers := fc.c.Controllers()
	for _, m := range controllers {
		m.PowerOff()
	}
	for _, m := range controllers {
		if err := os.RemoveAll(filepath.Join(m.Root, generator.HostCheckpointDir)); err != nil {
			t.Fatal(err)
		}
		active, _ := filepath.Glob(filepath.Join(m.Root, generator.HostStaticPodDir, "checkpoint-*"))
		for _, f := range active {
			os.Remove(f)
		}
	}
	for _, m := range controllers {
		if err := m.PowerOn(); err != nil {
			t.Fatal(err)
		}
	}
	// etcd comes back with its controllers (recover reads it); the API does not.
	untilTrue(t, ctx, 5*time.Minute, "etcd has quorum again", func() (bool, string) {
		members, err := fc.c.EtcdMembers(ctx)
		if err != nil {
			return false, err.Error()
		}
		healthy := 0
		for _, m := range members {
			if m.Healthy {
				healthy++
			}
		}
		return healthy == len(controllers), fmt.Sprintf("%d of %d members healthy", healthy, len(controllers))
	})
	return recoverAndPivot(t, ctx, fc, start, liftoffrecover.Options{Dir: fc.c.Dir})
}

// recoverAndPivot runs `liftoff recover` as an administrator would, places the bootstrap pods it
// wrote on their controller, and runs the pivot again, which must wait for the self-hosted control
// plane to be Ready anew and then remove them.
func recoverAndPivot(t testing.TB, ctx context.Context, fc failureCluster, start time.Time, opts liftoffrecover.Options) outcome {
	opts.Logf = t.Logf
	res, err := liftoffrecover.Run(ctx, opts)
	if err != nil {
		t.Fatalf("liftoff recover: %v", err)
	}
	m := fc.c.Machine(res.Controller)
	for _, f := range res.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(m.Root, generator.HostStaticPodDir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	recovered := time.Now()
	report, err := bootstrap.Run(ctx, bootstrap.Options{Dir: fc.c.Dir, Progress: func(e bootstrap.Event) {
		t.Logf("bootstrap after recover %6.1fs: %s %s %s %s", e.Elapsed.Seconds(), e.Stage, e.Object, e.Result, e.Detail)
	}})
	if err != nil {
		t.Fatalf("the pivot after recover: %v", err)
	}
	if report.AlreadyBootstrapped {
		t.Fatal("the pivot after recover found nothing to do")
	}
	if !report.ControlPlaneReady.After(res.Since) {
		t.Errorf("the control plane counted Ready at %s, before the recovery at %s: stale status fooled the pivot", report.ControlPlaneReady, res.Since)
	}
	bootstrapPods, _, err := harness.PivotedControlPlane(ctx, fc.client)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(m.Root, generator.HostStaticPodDir, generator.BootstrapPodPrefix+"*"))
	if len(bootstrapPods) > 0 || len(left) > 0 {
		t.Errorf("after the pivot, bootstrap pods %v and files %v are left", bootstrapPods, left)
	}
	leaders, err := harness.Leaders(ctx, fc.client)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaders {
		if !l.Current {
			t.Errorf("%s has no current leader after the pivot: %+v", l.Component, l)
		}
	}
	return outcome{recovery: time.Since(start), note: fmt.Sprintf("liftoff recover, then the pivot again (%s)", report.End.Sub(recovered).Round(100*time.Millisecond))}
}

// quorumLostRestoredFromSnapshot takes a snapshot with liftoff, writes more, then loses two of three
// etcd members for good: the API cannot write. Every controller is stopped, each member's data
// directory restored from the snapshot as `liftoff etcd restore` does, and the controllers started:
// everything up to the snapshot is back, and what was written after it is not.
func quorumLostRestoredFromSnapshot(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	cluster, err := etcdadmin.Open(fc.c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := cluster.TLS()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := etcdadmin.SaveSnapshot(ctx, tlsCfg, cluster.ClientURLs(), filepath.Join(t.TempDir(), "etcd.db"))
	if err != nil {
		t.Fatalf("liftoff etcd snapshot: %v", err)
	}
	t.Logf("snapshot: %d bytes, revision %d, %d keys, in %s", snap.Size, snap.Revision, snap.Keys, snap.Duration)
	const lost = "8 written after the snapshot"
	if n := writeKeys(t, ctx, fc.client, lost, 5); n != 5 {
		t.Fatalf("wrote %d of 5 objects after the snapshot", n)
	}
	start := time.Now()
	controllers := fc.c.Controllers()
	for _, m := range controllers[1:] {
		m.PowerOff()
		if err := os.RemoveAll(filepath.Join(m.Root, generator.HostEtcdDataDir, "member")); err != nil {
			t.Fatal(err)
		}
	}
	// Without quorum nothing is written.
	_, err = fc.client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	t.Logf("with one member of three left, a read through the endpoint: %v", err)

	controllers[0].PowerOff()
	restoreStart := time.Now()
	for _, m := range controllers {
		dataDir := filepath.Join(m.Root, generator.HostEtcdDataDir)
		if err := os.RemoveAll(filepath.Join(dataDir, "member")); err != nil {
			t.Fatal(err)
		}
		if _, err := cluster.Restore(snap.Path, m.Name, dataDir); err != nil {
			t.Fatalf("liftoff etcd restore of %s: %v", m.Name, err)
		}
	}
	restored := time.Since(restoreStart)
	for _, m := range controllers {
		if err := m.PowerOn(); err != nil {
			t.Fatal(err)
		}
	}
	untilTrue(t, ctx, 10*time.Minute, "the API is ready after the restore", func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		body, err := fc.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		if err != nil {
			return false, fmt.Sprintf("%v %s", err, body)
		}
		return true, ""
	})
	recovered := time.Since(start)
	if n := countKeys(t, ctx, fc.client, lost); n != 0 {
		t.Errorf("%d objects written after the snapshot are there after restoring it", n)
	}
	return outcome{recovery: recovered, note: fmt.Sprintf("restored from a %d-byte snapshot (restore %s); the 5 objects written after it are gone, as expected",
		snap.Size, restored.Round(10*time.Millisecond))}
}
