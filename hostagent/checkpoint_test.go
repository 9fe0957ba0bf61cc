package hostagent

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
)

// hostPods stands in for the container runtime, which the local-cluster tests ask for real: it
// reports the pods a test says run on the host.
type hostPods struct{ pods []LocalPod }

func (h *hostPods) RunningPods(context.Context) ([]LocalPod, error) { return h.pods, nil }

// TestCheckpointerAgainstRealAPI drives the checkpointer through a parent's life against a real
// kube-apiserver: saved once Ready, with its secret and config map as files readable by root only;
// not activated while the parent runs here or the API answers; activated when neither; removed from
// the static pod directory once the parent has run Ready for the grace period; and removed with its
// files once the API has not known the parent for the orphan period.
func TestCheckpointerAgainstRealAPI(t *testing.T) {
	cfg := apiservertest.Start(t)
	apiservertest.WaitReady(t, cfg)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	ns := "kube-system"
	if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "apiserver"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "apiserver-secret"},
		Data: map[string][]byte{"key.pem": []byte("secret bytes")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "apiserver-config"},
		Data: map[string]string{"a.yaml": "a: 1", "b.yaml": "b: 2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	parent := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-apiserver-x7k2p", Namespace: ns,
			Labels:          map[string]string{"k8s-app": "kube-apiserver", "controller-revision-hash": "abc"},
			Annotations:     map[string]string{generator.CheckpointAnnotation: "true"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "kube-apiserver", UID: "u1", Controller: &yes}}},
		Spec: corev1.PodSpec{
			NodeName: "n1", HostNetwork: true, ServiceAccountName: "apiserver",
			NodeSelector: map[string]string{"node-role.kubernetes.io/controller": "true"},
			Containers: []corev1.Container{{Name: "kube-apiserver", Image: "registry.k8s.io/kube-apiserver:v1.35.4",
				Args: []string{"--advertise-address=$(HOST_IP)"},
				Env:  []corev1.EnvVar{{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "secret", MountPath: "/s"}, {Name: "config", MountPath: "/c"},
					{Name: "token", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}, {Name: "pki", MountPath: "/etc/kubernetes/pki"}}}},
			Volumes: []corev1.Volume{
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "apiserver-secret"}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "apiserver-config"}, Items: []corev1.KeyToPath{{Key: "a.yaml", Path: "only-a.yaml"}}}}},
				{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
				{Name: "pki", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/pki"}}},
			},
		},
	}
	created, err := client.CoreV1().Pods(ns).Create(ctx, parent, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReady := func(ready bool) {
		t.Helper()
		p, err := client.CoreV1().Pods(ns).Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: "10.0.0.11", PodIP: "10.0.0.11",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}}
		if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	staticDir, cpDir := t.TempDir(), t.TempDir()
	host := &hostPods{}
	unreachable := kubernetes.NewForConfigOrDie(&rest.Config{Host: "https://" + apiservertest.FreeLoopback(t) + ":1", Timeout: time.Second})
	c := NewCheckpointer(CheckpointOptions{Client: client, Node: "n1", StaticPodDir: staticDir, CheckpointDir: cpDir, Runtime: host,
		Grace: 30 * time.Second, Orphan: time.Minute, Logf: t.Logf})
	key := "kube-system~daemonset~kube-apiserver"
	active := filepath.Join(staticDir, "checkpoint-"+key+".yaml")
	now := time.Now()

	// Not Ready: nothing is saved.
	setReady(false)
	c.Sync(ctx, now)
	if got := listDir(t, cpDir); len(got) != 0 {
		t.Fatalf("a parent that is not Ready was checkpointed: %v", got)
	}

	// Ready: saved, as a static pod needing nothing from the API.
	setReady(true)
	c.Sync(ctx, now)
	data, err := os.ReadFile(filepath.Join(cpDir, key+".yaml"))
	if err != nil {
		t.Fatalf("no checkpoint saved: %v (dir: %v)", err, listDir(t, cpDir))
	}
	var cp corev1.Pod
	if err := yaml.UnmarshalStrict(data, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Name != "kube-apiserver-checkpoint" || cp.Labels[CheckpointLabel] != "kube-apiserver" || cp.Labels["k8s-app"] != "" ||
		len(cp.OwnerReferences) != 0 || cp.Spec.ServiceAccountName != "" || cp.Spec.NodeName != "" || cp.Spec.NodeSelector != nil ||
		cp.Annotations[generator.CheckpointAnnotation] != "" {
		t.Errorf("checkpoint metadata or spec still ties it to the API:\n%s", data)
	}
	if env := cp.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "10.0.0.11" || env[0].ValueFrom != nil {
		t.Errorf("HOST_IP not filled in from the parent's status: %+v", env)
	}
	var volumes, mounts []string
	for _, v := range cp.Spec.Volumes {
		volumes = append(volumes, v.Name)
		if v.HostPath == nil {
			t.Errorf("volume %s is not a host path: %+v", v.Name, v.VolumeSource)
		}
	}
	for _, m := range cp.Spec.Containers[0].VolumeMounts {
		mounts = append(mounts, m.Name)
	}
	if !slices.Equal(volumes, []string{"secret", "config", "pki"}) || !slices.Equal(mounts, []string{"secret", "config", "pki"}) {
		t.Errorf("volumes %v, mounts %v; want the service account token dropped", volumes, mounts)
	}
	for rel, want := range map[string]string{"secret/key.pem": "secret bytes", "config/only-a.yaml": "a: 1"} {
		p := filepath.Join(cpDir, key+".data", rel)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, want)
			continue
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", rel, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(cpDir, key+".data", "config", "b.yaml")); err == nil {
		t.Error("a config map key the volume does not project was written")
	}
	if fi, _ := os.Stat(filepath.Join(cpDir, key+".yaml")); fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint mode %v, want 0600", fi.Mode().Perm())
	}

	// The API answers, the parent is not running here: not activated.
	c.Sync(ctx, now)
	if fileExists(active) {
		t.Fatal("activated while the API answers")
	}
	// The API is gone but the parent runs here (labels match, revision aside): not activated.
	host.pods = []LocalPod{{Namespace: ns, Name: "kube-apiserver-x7k2p", Labels: map[string]string{"k8s-app": "kube-apiserver", "controller-revision-hash": "def"}}}
	c.Client = unreachable
	c.Sync(ctx, now)
	c.Sync(ctx, now)
	if fileExists(active) {
		t.Fatal("activated while the parent runs here")
	}
	// Neither: activated after a second check.
	host.pods = []LocalPod{{Namespace: ns, Name: "kube-apiserver-checkpoint-n1", Labels: map[string]string{CheckpointLabel: "kube-apiserver"}}}
	c.Sync(ctx, now)
	if !fileExists(active) {
		t.Fatal("not activated with the parent gone and the API unreachable")
	}
	if got, _ := os.ReadFile(active); string(got) != string(data) {
		t.Errorf("the active checkpoint differs from the saved one")
	}

	// The API and the parent are back: the checkpoint stays for the grace period, then goes.
	c.Client = client
	host.pods = append(host.pods, LocalPod{Namespace: ns, Name: "kube-apiserver-x7k2p", Labels: map[string]string{"k8s-app": "kube-apiserver"}})
	c.Sync(ctx, now)
	c.Sync(ctx, now.Add(29*time.Second))
	if !fileExists(active) {
		t.Fatal("deactivated before the grace period")
	}
	c.Sync(ctx, now.Add(31*time.Second))
	if fileExists(active) {
		t.Fatal("still active after the parent ran Ready for the grace period")
	}

	// The parent is deleted: its checkpoint goes with its files after the orphan period.
	if err := client.CoreV1().Pods(ns).Delete(ctx, created.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	c.Sync(ctx, now.Add(40*time.Second))
	if got := listDir(t, cpDir); len(got) == 0 {
		t.Fatal("removed before the orphan period")
	}
	c.Sync(ctx, now.Add(101*time.Second))
	if got := listDir(t, cpDir); len(got) != 0 {
		t.Errorf("left after the orphan period: %v", got)
	}
}

// TestCheckpointPodRefusesEnvFromSecrets: a pod that takes its environment from a secret is not
// checkpointed, rather than written into a static pod.
func TestCheckpointPodRefusesEnvFromSecrets(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "kube-system"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "TOKEN",
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "t", LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}}}}}
	_, err := CheckpointPod(p, "kube-system~p", "/x", nil, map[string][]byte{})
	if err == nil || !strings.Contains(err.Error(), "TOKEN") {
		t.Errorf("err = %v, want a refusal naming TOKEN", err)
	}
}
