package harness_test

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
)

// checkBootstrapTokens shows on the running cluster that a machine's bootstrap token stops working
// when it expires and that a rotated one works: a worker made to join again from scratch with its
// expired token is refused by the real apiserver and gets no certificate; after `liftoff token
// rotate` (a re-render) and `liftoff bootstrap`, it joins with its new token, and the old token's
// Secret is gone from the cluster.
func checkBootstrapTokens(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	ctx := t.Context()
	m := c.Machine("worker-2")
	owner := generator.MachineTokenOwner(m.Name)
	old := machineToken(t, c.Dir, owner)
	secrets := client.CoreV1().Secrets("kube-system")

	// Time passes: the token's expiration is moved into the past, and the controller-manager's
	// tokencleaner deletes the expired Secret.
	expired := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	patch := `{"stringData":{"expiration":"` + expired + `"}}`
	if _, err := secrets.Patch(ctx, "bootstrap-token-"+old.ID, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	untilTrue(t, ctx, 2*time.Minute, "the tokencleaner deletes the expired token", func() (bool, string) {
		_, err := secrets.Get(ctx, "bootstrap-token-"+old.ID, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "bootstrap-token-" + old.ID + " is still there"
	})

	// The worker joins again from scratch with the expired token.
	since := time.Now().Add(-time.Second)
	log := rejoin(t, m, bootstrapKubeconfig(t, c.Dir, m.Name))
	untilTrue(t, ctx, 2*time.Minute, "the apiserver refuses the expired token", func() (bool, string) {
		return strings.Contains(log(), "Unauthorized"), "the kubelet's log since the boot:\n" + lastLines(log(), 10)
	})
	if _, err := m.ReadFile(filepath.Join(generator.HostKubeletPKIDir, "kubelet-client-current.pem")); err == nil {
		t.Errorf("%s got a client certificate with an expired token", m.Name)
	}
	if csrs := csrsOf(t, client, "system:bootstrap:"+old.ID, since); len(csrs) > 0 {
		t.Errorf("the expired token created certificate signing requests: %v", csrs)
	}

	// Rotate, apply, and the worker joins with its new token.
	if err := harness.Render(ctx, specBeside(c.Dir), c.Dir, owner); err != nil {
		t.Fatal(err)
	}
	fresh := machineToken(t, c.Dir, owner)
	if fresh.ID == old.ID || !fresh.Expires.After(time.Now()) {
		t.Fatalf("rotation gave %s, expiring %s (the old one was %s)", fresh.ID, fresh.Expires, old.ID)
	}
	bctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	pivot(t, c, bctx)
	if _, err := secrets.Get(ctx, "bootstrap-token-"+fresh.ID, metav1.GetOptions{}); err != nil {
		t.Fatalf("liftoff bootstrap did not apply the new token: %v", err)
	}
	rejoined := time.Now().Truncate(time.Second)
	rejoin(t, m, bootstrapKubeconfig(t, c.Dir, m.Name))
	untilTrue(t, ctx, 3*time.Minute, m.Name+" joins with its new token", func() (bool, string) {
		_, err := m.ReadFile(filepath.Join(generator.HostKubeletPKIDir, "kubelet-client-current.pem"))
		return err == nil && len(csrsOf(t, client, "system:bootstrap:"+fresh.ID, since)) > 0, "no client certificate yet"
	})
	// Ready as its kubelet reports it since it joined again, not as the API remembered it.
	err := harness.WaitForNodes(ctx, client, []string{m.Name}, func(n *corev1.Node) bool {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue && !cond.LastHeartbeatTime.Time.Before(rejoined)
			}
		}
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s was refused with the expired token %s and joined with the rotated token %s", m.Name, old.ID, fresh.ID)
}

// machineToken is owner's token in the render.
func machineToken(t *testing.T, dir, owner string) generator.BootstrapToken {
	t.Helper()
	tokens, err := generator.ReadBootstrapTokens(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Owner == owner {
			return tok
		}
	}
	t.Fatalf("the render has no token of %s", owner)
	return generator.BootstrapToken{}
}

// bootstrapKubeconfig is the bootstrap kubeconfig the render gives machine: in its Ignition
// config, or in the pack of secrets it fetches.
func bootstrapKubeconfig(t *testing.T, dir, machine string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "ignition", machine+".ign"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := ign.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Storage.Files {
		if f.Path == generator.HostBootstrapKubeletConf {
			return []byte(ignitionFileText(t, f.Contents.Source, f.Contents.Compression))
		}
	}
	pack, err := os.Open(filepath.Join(dir, generator.MachineSecretsPath(machine)))
	if err != nil {
		t.Fatalf("%s's config has no %s, and it has no pack of secrets: %v", machine, generator.HostBootstrapKubeletConf, err)
	}
	defer pack.Close()
	r := tar.NewReader(pack)
	for {
		h, err := r.Next()
		if err != nil {
			t.Fatalf("%s's pack of secrets has no %s: %v", machine, generator.HostBootstrapKubeletConf, err)
		}
		if "/"+h.Name == generator.HostBootstrapKubeletConf {
			data, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

// rejoin powers m off, takes away its kubelet's credentials, gives it the bootstrap kubeconfig and
// powers it on, so that its kubelet joins as on first boot. It returns what the kubelet has logged
// since.
func rejoin(t *testing.T, m *harness.Machine, kubeconfig []byte) func() string {
	t.Helper()
	m.PowerOff()
	certs, _ := filepath.Glob(filepath.Join(m.Root, generator.HostKubeletPKIDir, "kubelet-client-*"))
	for _, p := range append(certs, filepath.Join(m.Root, generator.HostKubeletKubeconfig)) {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(m.Root, generator.HostBootstrapKubeletConf), kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(m.Root, "var/log/liftoff-harness/kubelet.service.log")
	var offset int64
	if st, err := os.Stat(logPath); err == nil {
		offset = st.Size()
	}
	if err := m.PowerOn(); err != nil {
		t.Fatal(err)
	}
	return func() string {
		data, _ := os.ReadFile(logPath)
		if int64(len(data)) < offset {
			return string(data)
		}
		return string(data[offset:])
	}
}

// csrsOf names the certificate signing requests user made for a node client certificate since then.
func csrsOf(t *testing.T, client kubernetes.Interface, user string, since time.Time) []string {
	t.Helper()
	list, err := client.CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, csr := range list.Items {
		if csr.Spec.Username == user && csr.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName && !csr.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
			out = append(out, csr.Name)
		}
	}
	return out
}
