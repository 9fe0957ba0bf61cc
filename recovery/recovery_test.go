package recovery_test

import (
	"context"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
	"github.com/liftoff-k8s/liftoff/recovery"
)

// TestRecoverFromSnapshotAndDataDir stores a rendered self-hosted control plane through a real
// kube-apiserver, snapshots its etcd, and recovers the bootstrap control plane from the snapshot
// and from a data directory: the static pods are the rendered bootstrap pods again, with the
// controller's address where the templates read it from the downward API, and the recovery marker
// tells the pivot which controller runs them and since when.
func TestRecoverFromSnapshotAndDataDir(t *testing.T) {
	src := etcdtest.LoopbackSpec(t, "recovered", 1)
	src = strings.Replace(src, "{\n", "{\n  control_plane = \"self-hosted\"\n", 1)
	dir, res := etcdtest.Render(t, src)

	cfg := apiservertest.Start(t)
	apiservertest.WaitReady(t, cfg)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	rendered := map[string]*corev1.Pod{}
	for _, a := range res.Assets.Files {
		switch {
		case path.Dir(a.Path) == generator.OutBootstrapDir:
			var p corev1.Pod
			if err := yaml.UnmarshalStrict(a.Data, &p); err != nil {
				t.Fatal(err)
			}
			rendered[p.Name] = &p
		case path.Dir(a.Path) == generator.OutManifestDir:
			storeControlPlane(t, ctx, client, a.Data)
		}
	}
	if len(rendered) != 3 {
		t.Fatalf("rendered bootstrap pods: %d, want 3", len(rendered))
	}

	u, _ := url.Parse(cfg.Host)
	snap, err := etcdadmin.SaveSnapshot(ctx, nil, []string{"http://" + u.Hostname() + ":2379"}, filepath.Join(t.TempDir(), "etcd.db"))
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, opts recovery.Options) {
		r, err := recovery.Run(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Controller != "c1" || len(r.Files) != 3 {
			t.Fatalf("recovered %v for %q", r.Files, r.Controller)
		}
		cluster, _ := etcdadmin.Open(dir)
		ip, _ := url.Parse(cluster.Members[0].ClientURL)
		for _, f := range r.Files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(f); fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
			}
			var p corev1.Pod
			if err := yaml.UnmarshalStrict(b, &p); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			want := rendered[p.Name]
			if want == nil || filepath.Base(f) != p.Name+".yaml" {
				t.Errorf("%s holds pod %q, which the render has no bootstrap pod of", f, p.Name)
				continue
			}
			got := p.Spec.Containers[0]
			args := slices.Clone(got.Args)
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "$(HOST_IP)", ip.Hostname())
			}
			if !slices.Equal(args, want.Spec.Containers[0].Args) || got.Image != want.Spec.Containers[0].Image {
				t.Errorf("%s runs %s %v,\nthe rendered bootstrap pod %s %v", p.Name, got.Image, args, want.Spec.Containers[0].Image, want.Spec.Containers[0].Args)
			}
			if p.Labels["k8s-app"] != p.Name || p.Spec.NodeSelector != nil || p.Spec.ServiceAccountName != "" || !p.Spec.HostNetwork {
				t.Errorf("%s: labels %v, nodeSelector %v, service account %q, host network %v", p.Name, p.Labels, p.Spec.NodeSelector, p.Spec.ServiceAccountName, p.Spec.HostNetwork)
			}
		}
		rec, err := bootstrap.ReadRecovery(dir)
		if err != nil || rec == nil || rec.Controller != "c1" || len(rec.Pods) != 3 || rec.Since.IsZero() {
			t.Errorf("recovery marker %+v, %v", rec, err)
		}
	}
	t.Run("snapshot", func(t *testing.T) {
		check(t, recovery.Options{Dir: dir, Snapshot: snap.Path})
	})
	t.Run("data directory", func(t *testing.T) {
		cluster, err := etcdadmin.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(t.TempDir(), "member-data")
		if _, err := cluster.Restore(snap.Path, "c1", data); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(filepath.Join(data, "member", "snap", "db"))
		check(t, recovery.Options{Dir: dir, DataDir: data})
		if after, _ := os.ReadFile(filepath.Join(data, "member", "snap", "db")); string(after) != string(before) {
			t.Error("recover changed the data directory it read")
		}
	})
	t.Run("a snapshot whose hash does not match", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.db")
		b, _ := os.ReadFile(snap.Path)
		os.WriteFile(bad, append(b, 0), 0o600)
		h, _ := os.ReadFile(etcdadmin.HashFile(snap.Path))
		os.WriteFile(etcdadmin.HashFile(bad), []byte(strings.Replace(string(h), snap.Path, bad, 1)), 0o600)
		os.RemoveAll(filepath.Join(dir, bootstrap.RecoveryDir))
		if _, err := recovery.Run(ctx, recovery.Options{Dir: dir, Snapshot: bad}); err == nil {
			t.Fatal("recovered from a snapshot that does not match its hash")
		}
		if _, err := os.Stat(filepath.Join(dir, bootstrap.RecoveryDir)); err == nil {
			t.Error("a refused recovery wrote files")
		}
	})
}

// storeControlPlane creates the self-hosted control plane's workloads among a manifest's
// documents through the API, as the pivot would.
func storeControlPlane(t *testing.T, ctx context.Context, client kubernetes.Interface, data []byte) {
	t.Helper()
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			continue
		}
		var err2 error
		switch o := obj.(type) {
		case *appsv1.DaemonSet:
			if o.Name == "kube-apiserver" {
				_, err2 = client.AppsV1().DaemonSets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			}
		case *appsv1.Deployment:
			if o.Name == "kube-controller-manager" || o.Name == "kube-scheduler" {
				_, err2 = client.AppsV1().Deployments(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			}
		}
		if err2 != nil {
			t.Fatal(err2)
		}
	}
}
