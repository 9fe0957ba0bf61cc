// Package recovery is `liftoff recover`: it rebuilds a self-hosted cluster's bootstrap control
// plane from what etcd holds, when the self-hosted one cannot come back by itself (every
// controller-manager and scheduler gone, or every controller lost with its checkpoints).
//
// INPUTS: a render's output directory (its PKI reaches etcd; its inventory names the controllers)
// and one of: the controllers' running etcd, a copy of a member's data directory, or a snapshot
// with its SHA-256 beside it. A data directory or snapshot is read through a temporary etcd of
// this process on loopback, started on a copy: the original is never changed.
//
// OUTPUTS: under DIR/recovery/, static pods bootstrap-kube-apiserver.yaml,
// bootstrap-kube-controller-manager.yaml and bootstrap-kube-scheduler.yaml for one controller,
// made from the self-hosted DaemonSet's and Deployments' pod templates as etcd last stored them
// (so what an administrator changed since the render is kept), and recovery.json, which tells
// `liftoff bootstrap` to run the pivot again: it waits until the self-hosted control plane is
// Ready anew (not on what etcd still says from before the loss), then removes the bootstrap pods.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// Options configure a recovery.
type Options struct {
	// Dir is the render's output directory.
	Dir string
	// DataDir or Snapshot, at most one, is what to read; neither reads the running etcd.
	DataDir, Snapshot string
	// Controller runs the bootstrap control plane; the first controller when empty.
	Controller string
	Logf       func(format string, args ...any)
}

// Result is what a recovery wrote.
type Result struct {
	bootstrap.Recovery
	// Files are the static pods written, to be placed in the controller's static pod directory.
	Files []string
}

// components are the self-hosted workloads the bootstrap control plane is made from.
var components = []struct{ name, resource string }{
	{"kube-apiserver", "daemonsets"},
	{"kube-controller-manager", "deployments"},
	{"kube-scheduler", "deployments"},
}

// Run reads the self-hosted control plane from etcd and writes its bootstrap static pods.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.DataDir != "" && opts.Snapshot != "" {
		return nil, errors.New("recover from a data directory or a snapshot, not both")
	}
	cluster, err := etcdadmin.Open(opts.Dir)
	if err != nil {
		return nil, err
	}
	controller := cluster.Members[0]
	if opts.Controller != "" {
		if controller, err = cluster.Member(opts.Controller); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(controller.ClientURL)
	ip := ""
	if err == nil {
		ip = u.Hostname()
	}
	if ip == "" {
		return nil, fmt.Errorf("controller %s: no address in its client URL %s", controller.Name, controller.ClientURL)
	}
	since := time.Now().UTC().Truncate(time.Second)

	var cli *clientv3.Client
	source := "the running etcd of " + strings.Join(cluster.ClientURLs(), ", ")
	switch {
	case opts.DataDir != "" || opts.Snapshot != "":
		tmp, err := os.MkdirTemp("", "liftoff-recover-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		data := filepath.Join(tmp, "data")
		if opts.Snapshot != "" {
			source = "snapshot " + opts.Snapshot
			if _, err := cluster.Restore(opts.Snapshot, controller.Name, data); err != nil {
				return nil, err
			}
		} else {
			source = "data directory " + opts.DataDir
			if _, err := os.Stat(filepath.Join(opts.DataDir, "member", "snap", "db")); err != nil {
				return nil, fmt.Errorf("%s is not an etcd data directory (no member/snap/db): %w", opts.DataDir, err)
			}
			if err := os.CopyFS(data, os.DirFS(opts.DataDir)); err != nil {
				return nil, fmt.Errorf("copying %s: %w", opts.DataDir, err)
			}
		}
		stop, endpoint, err := startLocalEtcd(data)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", source, err)
		}
		defer stop()
		if cli, err = clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 10 * time.Second, Logger: zap.NewNop()}); err != nil {
			return nil, err
		}
	default:
		tlsCfg, err := cluster.TLS()
		if err != nil {
			return nil, err
		}
		if cli, err = clientv3.New(clientv3.Config{Endpoints: cluster.ClientURLs(), TLS: tlsCfg, DialTimeout: 10 * time.Second, Logger: zap.NewNop()}); err != nil {
			return nil, err
		}
	}
	defer cli.Close()
	opts.Logf("reading the self-hosted control plane from %s", source)

	st := &store{cli: cli, decoder: protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)}
	outDir := filepath.Join(opts.Dir, bootstrap.RecoveryDir)
	res := &Result{Recovery: bootstrap.Recovery{Controller: controller.Name, Since: since, Source: source}}
	pods := map[string][]byte{}
	for _, c := range components {
		tmpl, err := st.podTemplate(ctx, c.resource, c.name)
		if err != nil {
			return nil, err
		}
		name := generator.BootstrapPodPrefix + c.name
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: metav1.NamespaceSystem, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
			Spec:       tmpl.Spec,
			Status:     corev1.PodStatus{HostIP: ip, PodIP: ip},
		}
		pod.Spec.NodeName = controller.Name
		files := map[string][]byte{}
		static, err := hostagent.CheckpointPod(pod, name, filepath.Join(generator.HostCheckpointDir, name+".data"), func(kind, n string) (map[string][]byte, error) {
			return st.data(ctx, kind, metav1.NamespaceSystem, n)
		}, files)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		if len(files) > 0 {
			return nil, fmt.Errorf("%s mounts secrets or config maps, which a recovered bootstrap pod cannot carry yet", c.name)
		}
		static.Name = name
		static.Labels = map[string]string{"k8s-app": name, "tier": "control-plane"}
		static.Annotations = nil
		b, err := yaml.Marshal(static)
		if err != nil {
			return nil, err
		}
		pods[name+".yaml"] = b
		res.Pods = append(res.Pods, name)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return nil, err
	}
	for file, b := range pods {
		p := filepath.Join(outDir, file)
		if err := outdir.WriteFileAtomic(p, b, 0o600); err != nil {
			return nil, err
		}
		res.Files = append(res.Files, p)
	}
	if err := bootstrap.WriteRecovery(opts.Dir, res.Recovery); err != nil {
		return nil, err
	}
	slices.Sort(res.Files)
	opts.Logf("wrote %s for controller %s", strings.Join(res.Files, ", "), controller.Name)
	return res, nil
}

// store reads Kubernetes objects as the apiservers store them in etcd.
type store struct {
	cli     *clientv3.Client
	decoder runtime.Decoder
}

// registryPrefix is kube-apiserver's default --etcd-prefix.
const registryPrefix = "/registry/"

func (s *store) get(ctx context.Context, resource, namespace, name string) (runtime.Object, error) {
	key := registryPrefix + resource + "/" + namespace + "/" + name
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s from etcd: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("etcd holds no %s (%s/%s): is this a self-hosted liftoff cluster's etcd?", key, namespace, name)
	}
	v := resp.Kvs[0].Value
	if strings.HasPrefix(string(v), "k8s:enc:") {
		return nil, fmt.Errorf("%s is encrypted at rest; recover cannot read it without the cluster's encryption key", key)
	}
	obj, _, err := s.decoder.Decode(v, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", key, err)
	}
	return obj, nil
}

func (s *store) podTemplate(ctx context.Context, resource, name string) (*corev1.PodTemplateSpec, error) {
	obj, err := s.get(ctx, resource, metav1.NamespaceSystem, name)
	if err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		return &o.Spec.Template, nil
	case *appsv1.Deployment:
		return &o.Spec.Template, nil
	}
	return nil, fmt.Errorf("etcd's %s/%s is a %T", resource, name, obj)
}

func (s *store) data(ctx context.Context, kind, namespace, name string) (map[string][]byte, error) {
	if kind == "Secret" {
		obj, err := s.get(ctx, "secrets", namespace, name)
		if err != nil {
			return nil, err
		}
		if sec, ok := obj.(*corev1.Secret); ok {
			return sec.Data, nil
		}
		return nil, fmt.Errorf("secret %s/%s is a %T", namespace, name, obj)
	}
	obj, err := s.get(ctx, "configmaps", namespace, name)
	if err != nil {
		return nil, err
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return nil, fmt.Errorf("config map %s/%s is a %T", namespace, name, obj)
	}
	out := map[string][]byte{}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	return out, nil
}

// startLocalEtcd serves the data directory dir on a loopback port of this process, as a cluster
// of one member (the copy's other members are dropped), and returns how to stop it.
func startLocalEtcd(dir string) (stop func(), endpoint string, err error) {
	ports := make([]string, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", err
		}
		ports[i] = l.Addr().String()
		l.Close()
	}
	client, peer := url.URL{Scheme: "http", Host: ports[0]}, url.URL{Scheme: "http", Host: ports[1]}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "recovery"
	cfg.ForceNewCluster = true
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = "recovery=" + peer.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", err
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(time.Minute):
		e.Close()
		return nil, "", errors.New("the temporary etcd did not become ready within a minute")
	}
	return e.Close, client.String(), nil
}
