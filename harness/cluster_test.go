package harness_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// bootCluster renders testdata/cluster.hcl with the machines fetching their secrets from liftoff,
// boots it and runs bootstrap, which serves them. The cluster is closed when the test ends, and the
// test fails if anything the harness started survives that.
func bootCluster(t *testing.T) (*harness.Cluster, kubernetes.Interface) {
	t.Helper()
	start := time.Now()
	c, client := bootOnly(t, fetchingSecrets)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	pivot(t, c, ctx)
	if err := harness.WaitForNodes(ctx, client, c.NodeNames(), nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("boot: %d nodes Ready %s after Boot started", len(c.NodeNames()), time.Since(start).Round(time.Second))
	return c, client
}

// dumpLogs prints the end of every machine's unit and container logs.
func dumpLogs(t testing.TB, c *harness.Cluster) {
	for _, m := range c.Machines() {
		files, _ := filepath.Glob(filepath.Join(m.Root, "var/log/liftoff-harness/*.log"))
		more, _ := filepath.Glob(filepath.Join(m.Root, "var/log/pods/*/*/*.log"))
		for _, f := range append(files, more...) {
			data, _ := os.ReadFile(f)
			lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
			if len(lines) > 15 {
				lines = lines[len(lines)-15:]
			}
			rel, _ := filepath.Rel(m.Root, f)
			t.Logf("--- %s:/%s\n%s", m.Name, rel, strings.Join(lines, "\n"))
		}
	}
}

// TestCluster boots the 3-controller, 2-worker static cluster of testdata/cluster.hcl, bootstraps
// it and checks, against the real components, everything a working cluster must show; then it
// injects faults and checks that the cluster recovers.
func TestCluster(t *testing.T) {
	start := time.Now()
	c, client := bootCluster(t)
	ctx := t.Context()
	wait := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("etcd", func(t *testing.T) {
		members, err := c.EtcdMembers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		leaders := 0
		var names []string
		for _, m := range members {
			names = append(names, m.Name)
			if !m.Healthy {
				t.Errorf("etcd member %s is not healthy: %s", m.Name, m.Detail)
			}
			if m.Leader {
				leaders++
			}
		}
		if want := []string{"controller-1", "controller-2", "controller-3"}; !slices.Equal(names, want) {
			t.Errorf("etcd members = %v, want %v", names, want)
		}
		if leaders != 1 {
			t.Errorf("%d etcd members say they are the leader, want 1", leaders)
		}
		// A write and a read through the quorum, with the apiserver's client certificate.
		cli, err := c.EtcdClient()
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		if _, err := cli.Put(ctx, "/liftoff-harness/check", "ok"); err != nil {
			t.Fatal(err)
		}
		got, err := cli.Get(ctx, "/liftoff-harness/check")
		if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "ok" {
			t.Fatalf("reading back from etcd: %v %v", got, err)
		}
		// The apiservers store the cluster in this etcd.
		keys, err := cli.Get(ctx, "/registry/minions/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil || keys.Count != 5 {
			t.Errorf("etcd holds %v Nodes (err %v), want 5", keys.Count, err)
		}
	})

	t.Run("apiservers", func(t *testing.T) {
		servers, err := c.APIServers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(servers) != 3 {
			t.Errorf("%d apiservers, want 3", len(servers))
		}
		for _, s := range servers {
			if !s.Ready {
				t.Errorf("apiserver on %s (%s) is not ready: %s", s.Machine, s.URL, s.Detail)
			}
		}
		// Each is also a mirror pod whose readiness comes from its real readiness probe.
		err = harness.WaitForPods(wait(t), client, "kube-system", "k8s-app=kube-apiserver", "3 ready kube-apiserver pods", func(ps []*corev1.Pod) (bool, string) {
			return countPods(ps, harness.PodReady) == 3, describePods(ps)
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("leaders", func(t *testing.T) {
		// Leader election is a lease renewed every few seconds; wait until both components hold one.
		err := harness.WaitForPods(wait(t), client, "kube-system", "tier=control-plane", "control-plane pods and leaders", func(ps []*corev1.Pod) (bool, string) {
			leaders, err := harness.Leaders(ctx, client)
			if err != nil {
				return false, err.Error()
			}
			var missing []string
			for _, l := range leaders {
				machine, _, _ := strings.Cut(l.Holder, "_")
				if !l.Current || c.Machine(machine) == nil || c.Machine(machine).Role != "controller" {
					missing = append(missing, fmt.Sprintf("%s leader %q current=%v", l.Component, l.Holder, l.Current))
				}
			}
			if ready := countPods(ps, harness.PodReady); ready != 9 {
				missing = append(missing, fmt.Sprintf("%d of 9 control-plane pods ready: %s", ready, describePods(ps)))
			}
			return len(missing) == 0, strings.Join(missing, "; ")
		})
		if err != nil {
			t.Fatal(err)
		}
		leaders, _ := harness.Leaders(ctx, client)
		for _, l := range leaders {
			t.Logf("%s leader: %s", l.Component, l.Holder)
		}
	})

	t.Run("nodes", func(t *testing.T) {
		checkNodes(t, c, client)
	})

	t.Run("tls-bootstrap", func(t *testing.T) {
		checkKubeletCertificates(t, c, client)
	})

	t.Run("every-pod-ready", func(t *testing.T) {
		// Every pod of the rendered cluster runs as real containers: the control plane on each
		// controller, flannel and kube-proxy on every machine, CoreDNS twice, each Ready by its
		// own probes.
		err := harness.WaitForPods(wait(t), client, "", "", "every pod Running and Ready", func(ps []*corev1.Pod) (bool, string) {
			on := func(app string) int {
				return countPods(ps, func(p *corev1.Pod) bool { return p.Labels["k8s-app"] == app && harness.PodReady(p) })
			}
			var missing []string
			for app, want := range map[string]int{"flannel": 5, "kube-proxy": 5, "kube-dns": 2} {
				if n := on(app); n != want {
					missing = append(missing, fmt.Sprintf("%d of %d %s pods Ready", n, want, app))
				}
			}
			if n := countPods(ps, harness.PodReady); n != len(ps) {
				missing = append(missing, fmt.Sprintf("%d of %d pods Ready", n, len(ps)))
			}
			return len(missing) == 0, strings.Join(missing, "; ") + ": " + describePods(ps)
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("workloads", func(t *testing.T) {
		checkWorkloads(t, c, client)
	})

	t.Run("security", func(t *testing.T) {
		checkSecurity(t, c, client)
	})

	t.Run("bootstrap-tokens", func(t *testing.T) {
		checkBootstrapTokens(t, c, client)
	})

	t.Run("kubectl", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Fatalf("kubectl is needed on PATH: %v", err)
		}
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", c.AdminKubeconfig(), "get", "nodes", "--no-headers", "-o", "wide").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get nodes: %v\n%s", err, out)
		}
		t.Logf("kubectl get nodes -o wide:\n%s", out)
		ready := 0
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] == "Ready" {
				ready++
			}
		}
		if ready != 5 {
			t.Errorf("kubectl lists %d Ready nodes, want 5", ready)
		}
	})

	t.Run("bootstrap-again", func(t *testing.T) {
		checkBootstrapAgain(t, c)
	})

	mem := c.Memory()
	t.Logf("memory of the running 5-machine cluster: %s", mem)
	t.Logf("boot to a verified cluster took %s", time.Since(start).Round(time.Second))

	t.Run("kill-apiserver", func(t *testing.T) {
		m := c.Machine("controller-1")
		pod := "kube-apiserver-" + m.Name
		if err := m.KillContainer(ctx, "kube-system", pod, "kube-apiserver"); err != nil {
			t.Fatal(err)
		}
		err := harness.WaitForPod(wait(t), client, "kube-system", pod, func(p *corev1.Pod) (bool, string) {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].Ready && cs[0].LastTerminationState.Terminated != nil, harness.DescribePod(p)
		})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := client.CoreV1().Pods("kube-system").Get(ctx, pod, metav1.GetOptions{})
		t.Logf("after the kill: %s; last state: %s", harness.DescribePod(p), p.Status.ContainerStatuses[0].LastTerminationState.Terminated.Message)
	})

	t.Run("reboot-worker", func(t *testing.T) {
		m := c.Machine("worker-2")
		before, err := client.CoreV1().Nodes().Get(ctx, m.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rebooted := time.Now().Truncate(time.Second)
		if err := m.Reboot(); err != nil {
			t.Fatal(err)
		}
		err = harness.WaitForNodes(wait(t), client, []string{m.Name}, func(n *corev1.Node) bool {
			return n.Status.NodeInfo.BootID != before.Status.NodeInfo.BootID && harness.NodeReady(n)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Its pods run again: their containers started after the reboot.
		err = harness.WaitForPods(wait(t), client, "kube-system", "k8s-app in (kube-proxy, flannel)", "add-on pods on "+m.Name, func(ps []*corev1.Pod) (bool, string) {
			n := countPods(ps, func(p *corev1.Pod) bool {
				if p.Spec.NodeName != m.Name || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
					return false
				}
				r := p.Status.ContainerStatuses[0].State.Running
				return r != nil && !r.StartedAt.Time.Before(rebooted)
			})
			return n == 2, describePods(ps)
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("partition-worker", func(t *testing.T) {
		m := c.Machine("worker-1")
		if err := m.Partition(true); err != nil {
			t.Fatal(err)
		}
		// The node lifecycle controller notices the missing heartbeats after its grace period.
		err := harness.WaitForNodes(wait(t), client, []string{m.Name}, func(n *corev1.Node) bool { return !harness.NodeReady(n) })
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Partition(false); err != nil {
			t.Fatal(err)
		}
		if err := harness.WaitForNodes(wait(t), client, []string{m.Name}, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("stop-controller", func(t *testing.T) {
		m := c.Machine("controller-3")
		m.Stop()
		if err := m.PowerOn(); err == nil {
			t.Error("a machine stopped for good powered on again")
		}
		// The load balancer's health checks (every second) drop the dead apiserver.
		for deadline := time.Now().Add(time.Minute); len(c.LoadBalancer().Healthy()) != 2 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if healthy := c.LoadBalancer().Healthy(); len(healthy) != 2 {
			t.Fatalf("the load balancer forwards to %v", healthy)
		}
		// The API still answers through the load balancer, on etcd's remaining quorum.
		for range 5 {
			if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
				t.Fatalf("the API with one controller stopped: %v", err)
			}
		}
		// etcd keeps a quorum of two; if the stopped member led, the others elect a new leader.
		var summary string
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			members, err := c.EtcdMembers(ctx)
			if err != nil {
				summary = err.Error()
				continue
			}
			healthy, leaders, stoppedHealthy := 0, 0, false
			for _, em := range members {
				if em.Healthy {
					healthy++
				}
				if em.Leader {
					leaders++
				}
				stoppedHealthy = stoppedHealthy || (em.Name == m.Name && em.Healthy)
			}
			summary = fmt.Sprintf("%d healthy members, %d leaders, stopped member healthy: %v", healthy, leaders, stoppedHealthy)
			if healthy == 2 && leaders == 1 && !stoppedHealthy {
				return
			}
		}
		t.Errorf("etcd with one controller stopped: %s; want 2 healthy members, 1 leader", summary)
	})
}

func countPods(ps []*corev1.Pod, ok func(*corev1.Pod) bool) int {
	n := 0
	for _, p := range ps {
		if ok(p) {
			n++
		}
	}
	return n
}

func describePods(ps []*corev1.Pod) string {
	var out []string
	for _, p := range ps {
		out = append(out, harness.DescribePod(p))
	}
	return strings.Join(out, "; ")
}

func readyMessage(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition"
}

// checkNodes checks every Node against what its machine's kubelet.env asked for.
func checkNodes(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	for _, m := range c.Machines() {
		n, err := client.CoreV1().Nodes().Get(t.Context(), m.Name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			continue
		}
		if !harness.NodeReady(n) {
			t.Errorf("Node %s is not Ready", m.Name)
		}
		var ip string
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		if ip != m.IP {
			t.Errorf("Node %s has InternalIP %q, want %s", m.Name, ip, m.IP)
		}
		role := "node.kubernetes.io/" + m.Role
		if n.Labels[role] != "true" {
			t.Errorf("Node %s lacks the label %s=true: %v", m.Name, role, n.Labels)
		}
		tainted := false
		for _, taint := range n.Spec.Taints {
			tainted = tainted || (taint.Key == "node-role.kubernetes.io/controller" && taint.Effect == corev1.TaintEffectNoSchedule)
		}
		if tainted != (m.Role == "controller") {
			t.Errorf("Node %s (%s) has taints %v", m.Name, m.Role, n.Spec.Taints)
		}
		if n.Spec.PodCIDR == "" {
			t.Errorf("Node %s was given no pod CIDR by the controller-manager", m.Name)
		}
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(t.Context(), m.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("Node %s has no Lease: %v", m.Name, err)
		} else if time.Since(lease.Spec.RenewTime.Time) > time.Minute {
			t.Errorf("Node %s's Lease was last renewed at %s", m.Name, lease.Spec.RenewTime)
		}
		checkKubeletListens(t, m)
	}
}

// checkKubeletListens checks that the machine's kubelet serves its API (10250) and its health
// checks (10248) on the machine's own address only, as its configuration's drop-in says.
func checkKubeletListens(t *testing.T, m *harness.Machine) {
	out, err := m.Exec(t.Context(), "ss", "-Hltn")
	if err != nil {
		t.Error(err)
		return
	}
	found := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 4 {
			continue
		}
		host, port, err := net.SplitHostPort(fields[3])
		if err != nil || (port != "10250" && port != "10248") {
			continue
		}
		found[port] = true
		if host != m.IP {
			t.Errorf("the kubelet of %s listens on %s, want only %s", m.Name, fields[3], net.JoinHostPort(m.IP, port))
		}
	}
	if !found["10250"] || !found["10248"] {
		t.Errorf("the kubelet of %s does not listen on both 10250 and 10248:\n%s", m.Name, out)
	}
}

// checkKubeletCertificates checks that every kubelet got its client certificate through TLS
// bootstrap: an approved CSR from the bootstrap token for the kubelet signer, and a certificate
// for system:node:NAME in system:nodes issued by the cluster CA.
func checkKubeletCertificates(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	caPEM, err := os.ReadFile(filepath.Join(c.Dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	csrs, err := client.CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range c.Machines() {
		data, err := m.ReadFile("/var/lib/kubelet/pki/kubelet-client-current.pem")
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		block, _ := pem.Decode(data)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Errorf("%s: %v", m.Name, err)
			continue
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: kubelet client certificate is not a client certificate of the cluster CA: %v", m.Name, err)
		}
		if cert.Subject.CommonName != "system:node:"+m.Name || !slices.Equal(cert.Subject.Organization, []string{"system:nodes"}) {
			t.Errorf("%s: kubelet client certificate is for %s", m.Name, cert.Subject)
		}
		found := false
		for _, csr := range csrs.Items {
			if !bytes.Equal(csr.Status.Certificate, data[:len(pem.EncodeToMemory(block))]) {
				continue
			}
			found = true
			approved := false
			for _, cond := range csr.Status.Conditions {
				approved = approved || (cond.Type == certificatesv1.CertificateApproved && cond.Status == corev1.ConditionTrue)
			}
			if !approved || csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName || !strings.HasPrefix(csr.Spec.Username, "system:bootstrap:") {
				t.Errorf("%s: CSR %s: signer %s, requested by %s, approved %v", m.Name, csr.Name, csr.Spec.SignerName, csr.Spec.Username, approved)
			}
		}
		if !found {
			t.Errorf("%s: no CertificateSigningRequest issued the kubelet's certificate", m.Name)
		}
	}
}

// checkBootstrapAgain runs bootstrap again, in process and through the liftoff command, against
// the live cluster: every object must be unchanged. Then it checks that a manifest the API
// rejects fails at once, naming its file and object.
func checkBootstrapAgain(t *testing.T, c *harness.Cluster) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	report, err := bootstrap.Run(ctx, bootstrap.Options{Dir: c.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if !report.AlreadyBootstrapped {
		t.Error("a second bootstrap did not find the cluster bootstrapped")
	}

	bin := filepath.Join(t.TempDir(), "liftoff")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/liftoff-k8s/liftoff/cmd/liftoff").CombinedOutput(); err != nil {
		t.Fatalf("building liftoff: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, bin, "bootstrap", "--dir", c.Dir).CombinedOutput()
	if err != nil {
		t.Fatalf("liftoff bootstrap: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "result=created") || strings.Contains(string(out), "result=configured") || !strings.Contains(string(out), "nothing to do") {
		t.Errorf("liftoff bootstrap against the bootstrapped cluster did not say it had nothing to do:\n%s", out)
	}
	// Resuming at the manifests stage applies them again: each is unchanged.
	out, err = exec.CommandContext(ctx, bin, "bootstrap", "--dir", c.Dir, "--from", "manifests").CombinedOutput()
	if err != nil {
		t.Fatalf("liftoff bootstrap --from manifests: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "result=created") || strings.Contains(string(out), "result=configured") || !strings.Contains(string(out), "result=unchanged") {
		t.Errorf("liftoff bootstrap --from manifests against the live cluster changed something:\n%s", out)
	}

	// A copy of the output directory with one invalid manifest.
	bad := filepath.Join(t.TempDir(), "out")
	if err := os.CopyFS(bad, os.DirFS(c.Dir)); err != nil {
		t.Fatal(err)
	}
	assets, err := outdir.Read(bad)
	if err != nil {
		t.Fatal(err)
	}
	assets.Add(generator.Asset{Path: "manifests/90-broken.yaml", Kind: generator.KindManifest, Mode: 0o644, Data: []byte(
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: kube-system\ndata:\n  key: value\nunknownField: 1\n")})
	assets.Sort()
	if err := outdir.Write(bad, assets); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = bootstrap.Run(ctx, bootstrap.Options{Dir: bad})
	if err == nil || !strings.Contains(err.Error(), "manifests/90-broken.yaml") || !strings.Contains(err.Error(), "ConfigMap kube-system/broken") {
		t.Errorf("bootstrap with an invalid manifest: %v; want an error naming manifests/90-broken.yaml and ConfigMap kube-system/broken", err)
	}
	if d := time.Since(begin); d > 30*time.Second {
		t.Errorf("the invalid manifest took %s to fail; it must fail fast", d)
	}
	t.Logf("invalid manifest: %v", err)
}
