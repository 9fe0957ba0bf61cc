package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
)

// EtcdTLS is the client TLS configuration of the apiservers towards etcd, from the rendered PKI.
func (c *Cluster) EtcdTLS() (*tls.Config, error) {
	return bootstrap.EtcdClientTLS(filepath.Join(c.absDir(), generator.OutPKIDir))
}

// EtcdEndpoints are the controllers' etcd client URLs.
func (c *Cluster) EtcdEndpoints() []string {
	var out []string
	for _, m := range c.Controllers() {
		out = append(out, "https://"+net.JoinHostPort(m.IP, strconv.Itoa(generator.EtcdClientPort)))
	}
	return out
}

// EtcdClient connects to the cluster's etcd as the apiservers do.
func (c *Cluster) EtcdClient() (*clientv3.Client, error) {
	tlsCfg, err := c.EtcdTLS()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: c.EtcdEndpoints(), TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// EtcdMember is one etcd member as the cluster reports it.
type EtcdMember struct {
	Name      string
	ID        uint64
	ClientURL string
	// Healthy: the member answered a status request over TLS.
	Healthy bool
	Leader  bool
	Detail  string
}

// EtcdMembers lists etcd's members and asks each for its status over TLS with the rendered
// certificates.
func (c *Cluster) EtcdMembers(ctx context.Context) ([]EtcdMember, error) {
	cli, err := c.EtcdClient()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := cli.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("etcd member list: %w", err)
	}
	// Each member is asked on its own, with its own deadline: a dead member must not use up the
	// time of the others.
	out := make([]EtcdMember, len(list.Members))
	var wg sync.WaitGroup
	for i, m := range list.Members {
		out[i] = EtcdMember{Name: m.Name, ID: m.ID, Detail: "not started"}
		if len(m.ClientURLs) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			em := &out[i]
			em.ClientURL = m.ClientURLs[0]
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := cli.Status(sctx, em.ClientURL)
			switch {
			case err != nil:
				em.Detail = err.Error()
			case len(st.Errors) > 0:
				em.Detail = strings.Join(st.Errors, "; ")
			default:
				em.Healthy, em.Leader = true, st.Leader == m.ID
				em.Detail = fmt.Sprintf("version %s, raft term %d, db %d KiB", st.Version, st.RaftTerm, st.DbSize>>10)
			}
		}()
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// APIServer is one controller's apiserver as /readyz reports it.
type APIServer struct {
	Machine string
	URL     string
	Ready   bool
	Detail  string
}

// APIServers asks each controller's apiserver directly (not through the load balancer) for
// /readyz, with the admin credentials.
func (c *Cluster) APIServers(ctx context.Context) ([]APIServer, error) {
	admin, err := c.AdminConfig()
	if err != nil {
		return nil, err
	}
	var out []APIServer
	for _, m := range c.Controllers() {
		cfg := rest.CopyConfig(admin)
		cfg.Host = "https://" + net.JoinHostPort(m.IP, "6443")
		cfg.Timeout = 5 * time.Second
		a := APIServer{Machine: m.Name, URL: cfg.Host}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, err
		}
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			a.Detail = strings.TrimSpace(err.Error())
		} else {
			a.Ready, a.Detail = strings.TrimSpace(string(body)) == "ok", strings.TrimSpace(string(body))
		}
		out = append(out, a)
	}
	return out, nil
}

// Leader is the holder of a control-plane component's leader election lease.
type Leader struct {
	Component string
	Holder    string
	// Current: the lease was renewed within its duration.
	Current bool
	Renewed time.Time
}

// LeaderComponents are the components whose leader election leases kube-system holds.
var LeaderComponents = []string{"kube-controller-manager", "kube-scheduler"}

// Leaders reads the leader election leases of the controller-manager and the scheduler.
func Leaders(ctx context.Context, client kubernetes.Interface) ([]Leader, error) {
	var out []Leader
	for _, name := range LeaderComponents {
		l, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out = append(out, Leader{Component: name})
			continue
		}
		if err != nil {
			return nil, err
		}
		ld := Leader{Component: name}
		if l.Spec.HolderIdentity != nil {
			ld.Holder = *l.Spec.HolderIdentity
		}
		if l.Spec.RenewTime != nil && l.Spec.LeaseDurationSeconds != nil {
			ld.Renewed = l.Spec.RenewTime.Time
			ld.Current = time.Since(ld.Renewed) < time.Duration(*l.Spec.LeaseDurationSeconds)*time.Second
		}
		out = append(out, ld)
	}
	return out, nil
}

// NodeNames are the names of the cluster's machines, which are its Nodes' names.
func (c *Cluster) NodeNames() []string {
	var out []string
	for _, m := range c.Machines() {
		out = append(out, m.Name)
	}
	return out
}

// NodeRoles returns a Node's roles from liftoff's role labels.
func NodeRoles(n *corev1.Node) string {
	var roles []string
	for _, r := range []string{"bootstrap", "controller", "worker"} {
		if n.Labels["node.kubernetes.io/"+r] == "true" {
			roles = append(roles, r)
		}
	}
	return strings.Join(roles, ",")
}

// PivotedControlPlane reports what of the control plane a self-hosted pivot leaves in the API: the
// bootstrap pods still there (none, when it is done) and how many live self-hosted apiserver pods run.
func PivotedControlPlane(ctx context.Context, client kubernetes.Interface) (bootstrapPods []string, apiservers int, err error) {
	pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, 0, err
	}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Name, generator.BootstrapPodPrefix) {
			bootstrapPods = append(bootstrapPods, p.Name)
		}
		if p.Labels["k8s-app"] == "kube-apiserver" && p.DeletionTimestamp == nil && p.Annotations[corev1.MirrorPodAnnotationKey] == "" {
			apiservers++
		}
	}
	return bootstrapPods, apiservers, nil
}
