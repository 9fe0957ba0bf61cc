package harness_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// BenchmarkBoot measures how long the 5-machine cluster of testdata/cluster.hcl takes from
// powering on fresh machines to every Node Ready with the manifests applied, and the memory it
// then uses. Programs are built (or found) before the clock starts.
func BenchmarkBoot(b *testing.B) {
	for _, name := range []string{"ignition", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		testbin.MustPath(b, name)
	}
	out := filepath.Join(b.TempDir(), "out")
	renderTestCluster(b, out)
	var total time.Duration
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
		err = bootstrap.Run(ctx, bootstrap.Options{Dir: out})
		if err == nil {
			var cfg *rest.Config
			if cfg, err = c.AdminConfig(); err == nil {
				err = harness.WaitForNodes(ctx, kubernetes.NewForConfigOrDie(cfg), c.NodeNames(), nil)
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
		memory += mem.Total()
		b.Logf("boot %d: %s to 5 Ready nodes; %s", i+1, elapsed.Round(100*time.Millisecond), mem)
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/boot")
	b.ReportMetric(float64(memory)/float64(b.N)/(1<<20), "MiB-RSS")
}
