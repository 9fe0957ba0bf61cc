package harness_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// BenchmarkBoot measures how long the 5-machine cluster of testdata/cluster.hcl takes from fresh
// machines (laid out by Ignition, images imported) to every Node Ready with the manifests applied,
// and on to every pod Running and Ready, and the memory the whole cluster then uses. Programs and
// images are built (or found) before the clock starts.
func BenchmarkBoot(b *testing.B) {
	for _, name := range []string{"ignition", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		testbin.MustPath(b, name)
	}
	out := filepath.Join(b.TempDir(), "out")
	renderTestCluster(b, out)
	var total, nodes time.Duration
	var memory int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c, err := harness.Boot(b.Context(), harness.Options{Dir: out, Work: b.TempDir()})
		if err != nil {
			if c != nil {
				c.Close()
			}
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
		var nodesReady time.Duration
		_, err = bootstrap.Run(ctx, bootstrap.Options{Dir: out})
		if err == nil {
			var cfg *rest.Config
			if cfg, err = c.AdminConfig(); err == nil {
				client := kubernetes.NewForConfigOrDie(cfg)
				if err = harness.WaitForNodes(ctx, client, c.NodeNames(), nil); err == nil {
					nodesReady = time.Since(start)
					err = harness.WaitForPods(ctx, client, "", "", "every pod Ready", func(ps []*corev1.Pod) (bool, string) {
						ready := 0
						for _, p := range ps {
							if harness.PodReady(p) {
								ready++
							}
						}
						// 3 × 3 control-plane pods, flannel and kube-proxy on 5 machines, 2 CoreDNS, 2 approvers.
						return ready == len(ps) && ready >= 23, fmt.Sprintf("%d of %d pods Ready", ready, len(ps))
					})
				}
			}
		}
		cancel()
		elapsed := time.Since(start)
		mem := c.Memory()
		b.StopTimer()
		if cerr := c.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		total += elapsed
		nodes += nodesReady
		memory += mem.Total()
		b.Logf("boot %d: %s to 5 Ready nodes, %s to every pod Ready; %s", i+1, nodesReady.Round(100*time.Millisecond), elapsed.Round(100*time.Millisecond), mem)
		b.StartTimer()
	}
	b.ReportMetric(nodes.Seconds()/float64(b.N), "s-to-nodes-ready")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/boot")
	b.ReportMetric(float64(memory)/float64(b.N)/(1<<20), "MiB-RSS")
}

// BenchmarkPivot measures `liftoff bootstrap` from machines just powered on to its end, for a
// static and a self-hosted cluster of one controller and one worker, and a self-hosted one that
// pivots from a bootstrap machine: the pivot's wall time, its
// lower bound (when the last required control-plane pod or controller Node became Ready, as the
// API reports it, to the second), the overhead beyond that bound (for a self-hosted cluster the
// bootstrap control plane's removal and the proof that followed), and the requests that failed
// for a client calling the API through the endpoint meanwhile.
func BenchmarkPivot(b *testing.B) {
	for _, mode := range []struct {
		name string
		edit func(string) string
	}{
		{"static", staticOf(selfHosted(1))},
		{"self-hosted", selfHosted(1)},
		{"bootstrap-machine", withBootstrapMachine(selfHosted(1))},
	} {
		b.Run(mode.name, func(b *testing.B) {
			out := filepath.Join(b.TempDir(), "out")
			renderTestClusterOf(b, out, mode.edit)
			var wall, bound, failed, requests float64
			for i := 0; i < b.N; i++ {
				c, err := harness.Boot(b.Context(), harness.Options{Dir: out, Work: b.TempDir()})
				if err != nil {
					if c != nil {
						c.Close()
					}
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(b.Context(), 15*time.Minute)
				report, err := bootstrap.Run(ctx, bootstrap.Options{Dir: out})
				cancel()
				if cerr := c.Close(); cerr != nil && err == nil {
					err = cerr
				}
				if err != nil {
					b.Fatal(err)
				}
				w, lb := report.End.Sub(report.Start), report.ControlPlaneReady.Sub(report.Start)
				wall += w.Seconds()
				bound += lb.Seconds()
				failed += float64(report.Handover.Failed)
				requests += float64(report.Handover.Requests)
				var stages []string
				for _, s := range report.Stages {
					if s.End != nil {
						stages = append(stages, fmt.Sprintf("%s %.1fs", s.Stage, s.End.Sub(s.Start).Seconds()))
					}
				}
				b.Logf("%s pivot %d: %s, lower bound %s, overhead %s; stages: %s; hand-over: %s", mode.name, i+1,
					w.Round(100*time.Millisecond), lb.Round(time.Second), (w - lb).Round(100*time.Millisecond), strings.Join(stages, ", "), report.Handover)
			}
			n := float64(b.N)
			b.ReportMetric(wall/n, "s-pivot")
			b.ReportMetric(bound/n, "s-lower-bound")
			b.ReportMetric((wall-bound)/n, "s-overhead")
			b.ReportMetric(failed/n, "failed-requests")
			b.ReportMetric(requests/n, "requests")
		})
	}
}

// BenchmarkRecovery boots a self-hosted cluster of three controllers, pivots it, and runs each
// scenario of the failure table once per iteration on it, reporting how long each recovery took
// (and the further durations a scenario measures: a partitioned Node going NotReady, its pod's
// eviction, the Node Ready again once the partition heals).
func BenchmarkRecovery(b *testing.B) {
	c, client := bootOnly(b, selfHosted(3))
	ctx, cancel := context.WithTimeout(b.Context(), 15*time.Minute)
	pivot(b, c, ctx)
	cancel()
	sums := map[string]time.Duration{}
	var units []string
	add := func(unit string, d time.Duration) {
		if _, ok := sums[unit]; !ok {
			units = append(units, unit)
		}
		sums[unit] += d
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range failureScenarios {
			out := runFailure(b, failureCluster{c, client}, s)
			add(s.metric, out.recovery)
			for _, m := range out.more {
				add(m.unit, m.d)
			}
		}
	}
	b.StopTimer()
	for _, u := range units {
		b.ReportMetric(sums[u].Seconds()/float64(b.N), u)
	}
}
