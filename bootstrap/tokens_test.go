package bootstrap

import (
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
)

func tokenSecret(id, groups string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bootstrap-token-" + id, Namespace: "kube-system"},
		Type: corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{"token-id": id, "token-secret": "0123456789abcdef",
			"usage-bootstrap-authentication": "true", "auth-extra-groups": groups}}
}

// TestRunPrunesRotatedTokens checks that bootstrap deletes liftoff's bootstrap tokens that the
// manifests no longer hold (rotated, or the old shared one) and leaves every other token alone.
func TestRunPrunesRotatedTokens(t *testing.T) {
	cfg := apiservertest.Start(t)
	apiservertest.WaitReady(t, cfg)
	client := kubernetes.NewForConfigOrDie(cfg)
	secrets := client.CoreV1().Secrets("kube-system")
	for _, s := range []*corev1.Secret{
		tokenSecret("old001", generator.NodeBootstrapGroup),                       // rotated away
		tokenSecret("kubeadm", "system:bootstrappers:kubeadm:default-node-token"), // someone else's
	} {
		if _, err := secrets.Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "out")
	writeOutput(t, dir, map[string]string{"manifests/00-bootstrap-token.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-new001
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  token-id: "new001"
  token-secret: "0123456789abcdef"
  usage-bootstrap-authentication: "true"
  auth-extra-groups: ` + generator.NodeBootstrapGroup + "\n"})
	var removed []string
	_, err := Run(t.Context(), Options{Dir: dir, Config: cfg, Timeout: 3 * time.Minute, Progress: func(e Event) {
		if e.Result == ResultRemoved {
			removed = append(removed, e.Object)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != "Secret kube-system/bootstrap-token-old001" {
		t.Errorf("removed %v, want the rotated token alone", removed)
	}
	for name, want := range map[string]bool{"bootstrap-token-old001": false, "bootstrap-token-kubeadm": true, "bootstrap-token-new001": true} {
		_, err := secrets.Get(t.Context(), name, metav1.GetOptions{})
		if got := err == nil; got != want || (err != nil && !apierrors.IsNotFound(err)) {
			t.Errorf("%s exists: %v (%v), want %v", name, got, err, want)
		}
	}
}
