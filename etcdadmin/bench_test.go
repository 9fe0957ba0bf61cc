package etcdadmin_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
)

// BenchmarkEtcdSnapshot measures saving a snapshot of a rendered single-member etcd holding
// 10,000 Kubernetes-like objects of 1 KiB (streamed over TLS, written and synced, its SHA-256
// and its revision read back) and restoring it into a member's data directory (checked against
// its hash file, then etcdutl's restore). The data is loaded once.
func BenchmarkEtcdSnapshot(b *testing.B) {
	dir, res := etcdtest.Render(b, etcdtest.LoopbackSpec(b, "etcdbench", 1))
	m := etcdtest.Members(b, res.Assets, b.TempDir())[0]
	m.Boot(b)
	etcd, err := etcdadmin.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	cli := etcdtest.Client(b, dir, m.ClientURL)
	etcdtest.WaitHealthy(b, cli, m.ClientURL)
	putObjects(b, cli, 10_000, 1024)
	tlsCfg, err := etcd.TLS()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "etcd.db")

	b.Run("save", func(b *testing.B) {
		var size int64
		for b.Loop() {
			snap, err := etcdadmin.SaveSnapshot(b.Context(), tlsCfg, etcd.ClientURLs(), path)
			if err != nil {
				b.Fatal(err)
			}
			size = snap.Size
		}
		b.ReportMetric(float64(size), "snapshot-bytes")
	})
	b.Run("restore", func(b *testing.B) {
		if _, err := etcdadmin.SaveSnapshot(b.Context(), tlsCfg, etcd.ClientURLs(), path); err != nil {
			b.Fatal(err)
		}
		dataDir := filepath.Join(b.TempDir(), "etcd")
		for b.Loop() {
			if _, err := etcd.Restore(path, m.Name, dataDir); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := os.RemoveAll(dataDir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
