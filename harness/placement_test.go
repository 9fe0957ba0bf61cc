package harness_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
)

// kubeletClient is the API as m's kubelet reaches it, with its own client certificate.
func kubeletClient(t *testing.T, m *harness.Machine) kubernetes.Interface {
	t.Helper()
	kc, err := clientcmd.LoadFromFile(filepath.Join(m.Root, generator.HostKubeletKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	// The kubelet's certificate is a link, by the machine's own absolute path, to the current one.
	inRoot := func(p string) string {
		p = filepath.Join(m.Root, p)
		if target, err := os.Readlink(p); err == nil && filepath.IsAbs(target) {
			return filepath.Join(m.Root, target)
		}
		return p
	}
	for _, a := range kc.AuthInfos {
		a.ClientCertificate, a.ClientKey = inRoot(a.ClientCertificate), inRoot(a.ClientKey)
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubernetes.NewForConfigOrDie(cfg)
}

// testPlacement shows that a worker cannot draw the pods that hold control-plane credentials to
// itself. Its kubelet's credential may put the role label node.kubernetes.io/controller on its own
// Node, as a kubelet's --node-labels can, but not liftoff's placement label; and with the role label
// it gets neither a self-hosted apiserver nor the liftoff agent.
func testPlacement(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	ctx := t.Context()
	m := c.Machine("worker-1")
	self := kubeletClient(t, m)
	label := func(key string, value any) error {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: value}}})
		_, err := self.CoreV1().Nodes().Patch(ctx, m.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	}
	if err := label(generator.PlacementController, "true"); !apierrors.IsForbidden(err) {
		t.Errorf("%s's kubelet put %s on its Node: %v; want it forbidden", m.Name, generator.PlacementController, err)
	}
	if err := label(generator.LabelController, "true"); err != nil {
		t.Fatalf("%s's kubelet could not set its role label: %v", m.Name, err)
	}
	defer func() {
		if err := label(generator.LabelController, nil); err != nil {
			t.Errorf("removing the role label: %v", err)
		}
	}()
	// The DaemonSet controller acts on a Node's labels within a second; give it fifteen.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		pods, err := client.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", m.Name).String()})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			for _, o := range p.OwnerReferences {
				if o.Kind == "DaemonSet" && (o.Name == "kube-apiserver" || o.Name == generator.HostAgent) {
					t.Fatalf("%s labelled itself a controller and got %s", m.Name, p.Name)
				}
			}
		}
		time.Sleep(time.Second)
	}
	n, err := client.CoreV1().Nodes().Get(ctx, "controller-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels[generator.PlacementController] != "true" {
		t.Errorf("controller-1 lacks %s: %v", generator.PlacementController, n.Labels)
	}
	t.Logf("%s may label itself %s but not %s, and got no control-plane pod", m.Name, generator.LabelController, generator.PlacementController)
}
