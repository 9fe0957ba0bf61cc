package csrapprover_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/csrapprover"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// approverManifest is the rendered manifests/ file that runs the approver, from the example cluster.
func approverManifest(t *testing.T) generator.Asset {
	t.Helper()
	c, diags := spec.ReadFile("../examples/demo/cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := render.Cluster(full, generator.Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assets.Files {
		if path.Dir(a.Path) == generator.OutManifestDir && strings.HasSuffix(a.Path, "-kubelet-serving-approver.yaml") {
			return a
		}
	}
	t.Fatal("no kubelet-serving-approver manifest rendered")
	return generator.Asset{}
}

// as is cfg acting as another user, the way the apiserver would see a client certificate of theirs.
func as(cfg *rest.Config, user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}

// TestApproverAgainstRealAPI runs the approver against a real kube-apiserver as its service account,
// with only the RBAC rules liftoff renders for it, and has node users request serving certificates:
// the kubelet's own request is approved, every other is denied with the check it failed, and a
// request for another signer is left alone.
func TestApproverAgainstRealAPI(t *testing.T) {
	admin := apiservertest.Start(t)
	apiservertest.WaitReady(t, admin)
	ctx := t.Context()
	client := kubernetes.NewForConfigOrDie(admin)

	// The approver's RBAC, service account and Deployment, applied the way liftoff bootstrap does.
	dir := filepath.Join(t.TempDir(), "out")
	assets := &generator.Assets{Cluster: "demo"}
	assets.Add(approverManifest(t))
	if err := outdir.Write(dir, assets); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.Run(ctx, bootstrap.Options{Dir: dir, Config: admin, Timeout: time.Minute}); err != nil {
		t.Fatal(err)
	}

	for _, n := range []struct{ name, ip string }{{"n1", "10.0.0.11"}, {"n2", "10.0.0.12"}} {
		node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.ip}, {Type: corev1.NodeHostName, Address: n.name}}
		if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	type request struct {
		name, user string
		groups     []string
		subject    string
		dns        []string
		ips        []string
		signer     string
		usages     []certificatesv1.KeyUsage
		// want is the condition the approver records ("" for none); message what it must say.
		want    certificatesv1.RequestConditionType
		message string
	}
	node := func(name string) (string, []string) { return "system:node:" + name, []string{"system:nodes"} }
	n1, nodes := node("n1")
	ghost, _ := node("ghost")
	requests := []request{
		{name: "kubelet-n1", user: n1, groups: nodes, subject: n1, dns: []string{"n1"}, ips: []string{"10.0.0.11"},
			want: certificatesv1.CertificateApproved, message: "the kubelet of node n1 requested a serving certificate for its own addresses 10.0.0.11, n1"},
		{name: "n1-with-n2s-address", user: n1, groups: nodes, subject: n1, dns: []string{"n1"}, ips: []string{"10.0.0.11", "10.0.0.12"},
			want: certificatesv1.CertificateDenied, message: "IP address 10.0.0.12 is not one of node n1's addresses"},
		{name: "n1-as-n2", user: n1, groups: nodes, subject: "system:node:n2", dns: []string{"n2"}, ips: []string{"10.0.0.12"},
			want: certificatesv1.CertificateDenied, message: `the subject's common name is "system:node:n2", not the requesting node's "system:node:n1"`},
		{name: "n1-for-the-api", user: n1, groups: nodes, subject: n1, dns: []string{"n1", "kubernetes.default.svc"}, ips: []string{"10.0.0.11"},
			want: certificatesv1.CertificateDenied, message: "DNS name kubernetes.default.svc is not one of node n1's hostnames"},
		{name: "n1-client-auth", user: n1, groups: nodes, subject: n1, dns: []string{"n1"}, ips: []string{"10.0.0.11"},
			usages: append(slices.Clone(serving), certificatesv1.UsageClientAuth),
			want:   certificatesv1.CertificateDenied, message: `usage "client auth" is not one of a serving certificate's`},
		{name: "admin-for-n1", user: "admin", subject: n1, dns: []string{"n1"}, ips: []string{"10.0.0.11"},
			want: certificatesv1.CertificateDenied, message: `requested by user "admin"`},
		{name: "ghost", user: ghost, groups: nodes, subject: ghost, dns: []string{"ghost"}, ips: []string{"10.0.0.99"},
			want: certificatesv1.CertificateDenied, message: "node ghost does not exist"},
		// A node's client certificate is the csrapproving controller's to approve, never this one's.
		{name: "n1-client-certificate", user: n1, groups: nodes, subject: n1, signer: certificatesv1.KubeAPIServerClientKubeletSignerName,
			usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}},
	}
	create := func(r request) {
		t.Helper()
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: r.subject, Organization: []string{"system:nodes"}}, DNSNames: r.dns}
		for _, ip := range r.ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		signer, usages := r.signer, r.usages
		if signer == "" {
			signer = certificatesv1.KubeletServingSignerName
		}
		if usages == nil {
			usages = serving
		}
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: r.name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: signer, Usages: usages,
			},
		}
		cfg := admin
		if r.user != "admin" {
			cfg = as(admin, r.user, r.groups...)
		}
		if _, err := kubernetes.NewForConfigOrDie(cfg).CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CSR %s as %s: %v", r.name, r.user, err)
		}
	}

	// Two replicas, as the Deployment runs: the one holding the Lease decides; when it stops, it
	// hands the Lease back and the other takes over.
	startReplica := func(identity string) (stop func()) {
		replicaCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- csrapprover.Run(replicaCtx, csrapprover.Options{
				Config:         as(admin, "system:serviceaccount:kube-system:"+generator.KubeletServingApprover),
				LeaseNamespace: "kube-system", LeaseName: generator.KubeletServingApprover, Identity: identity,
			})
		}()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("replica %s: %v", identity, err)
					}
				case <-time.After(30 * time.Second):
					t.Errorf("replica %s did not stop within 30s of its context ending", identity)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	leader := func() string {
		t.Helper()
		lease, err := client.CoordinationV1().Leases("kube-system").Get(ctx, generator.KubeletServingApprover, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if lease.Spec.HolderIdentity == nil {
			return ""
		}
		return *lease.Spec.HolderIdentity
	}

	// Half the requests are there when the first replica starts, half arrive while it runs: it
	// finds both by listing and by watching. (The first half are all kubelet-serving requests.)
	for _, r := range requests[:len(requests)/2] {
		create(r)
	}
	stopFirst := startReplica("replica-1")
	waitForDecisions(t, client, len(requests)/2)
	startReplica("replica-2")
	for _, r := range requests[len(requests)/2:] {
		create(r)
	}
	decided := waitForDecisions(t, client, len(requests)-1)
	if got := leader(); got != "replica-1" {
		t.Errorf("the Lease is held by %q, want replica-1, which started first", got)
	}

	stopFirst()
	n2, _ := node("n2")
	failover := request{name: "kubelet-n2", user: n2, groups: nodes, subject: n2, dns: []string{"n2"}, ips: []string{"10.0.0.12"},
		want: certificatesv1.CertificateApproved, message: "the kubelet of node n2 requested a serving certificate for its own addresses 10.0.0.12, n2"}
	requests = append(requests, failover)
	create(failover)
	decided = waitForDecisions(t, client, len(requests)-1)
	if got := leader(); got != "replica-2" {
		t.Errorf("after replica-1 stopped, the Lease is held by %q, want replica-2", got)
	}

	for _, r := range requests {
		got := decided[r.name]
		switch {
		case r.want == "" && len(got) > 0:
			t.Errorf("%s: the approver recorded %+v on another signer's request", r.name, got)
		case r.want == "":
		case len(got) != 1:
			t.Errorf("%s: decisions %+v, want one", r.name, got)
		case got[0].Type != r.want || !strings.Contains(got[0].Message, r.message):
			t.Errorf("%s: %s %q, want %s saying %q", r.name, got[0].Type, got[0].Message, r.want, r.message)
		case got[0].Reason != map[certificatesv1.RequestConditionType]string{certificatesv1.CertificateApproved: csrapprover.ReasonApproved, certificatesv1.CertificateDenied: csrapprover.ReasonDenied}[r.want]:
			t.Errorf("%s: reason %q", r.name, got[0].Reason)
		}
	}
}

// waitForDecisions watches requests until want of them carry an approval or denial, and returns
// the approvals and denials of each decided request by name. After a minute it fails the test,
// listing the requests still undecided.
func waitForDecisions(t *testing.T, client kubernetes.Interface, want int) map[string][]certificatesv1.CertificateSigningRequestCondition {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	decided := map[string][]certificatesv1.CertificateSigningRequestCondition{}
	undecided := map[string]bool{}
	csrs := client.CertificatesV1().CertificateSigningRequests()
	lw := &cache.ListWatch{
		ListFunc:  func(o metav1.ListOptions) (runtime.Object, error) { return csrs.List(ctx, o) },
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) { return csrs.Watch(ctx, o) },
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &certificatesv1.CertificateSigningRequest{}, nil, func(e watch.Event) (bool, error) {
		csr, ok := e.Object.(*certificatesv1.CertificateSigningRequest)
		if !ok {
			return false, nil
		}
		var conds []certificatesv1.CertificateSigningRequestCondition
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
				conds = append(conds, c)
			}
		}
		if len(conds) == 0 {
			undecided[csr.Name] = true
			return false, nil
		}
		decided[csr.Name] = conds
		delete(undecided, csr.Name)
		return len(decided) >= want, nil
	})
	if err != nil {
		t.Fatalf("%d of %d requests decided within a minute (%v); still undecided: %s (the approver's log says why)", len(decided), want, err, strings.Join(sortedKeys(undecided), ", "))
	}
	return decided
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
