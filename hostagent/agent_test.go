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

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
)

func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("kind: Pod\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestRemoveBootstrapPodsRemovesOnlyThem(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "bootstrap-kube-apiserver.yaml", "bootstrap-kube-scheduler.yaml", "kube-apiserver.yaml", "bootstrap-notes.txt", "my-bootstrap-kube-proxy.yaml")
	removed, err := RemoveBootstrapPods(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bootstrap-kube-apiserver.yaml", "bootstrap-kube-scheduler.yaml"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if got, want := listDir(t, dir), []string{"bootstrap-notes.txt", "kube-apiserver.yaml", "my-bootstrap-kube-proxy.yaml"}; !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	again, err := RemoveBootstrapPods(dir)
	if err != nil || len(again) != 0 {
		t.Errorf("a second removal: %v, %v", again, err)
	}
}

func TestAnswerRoundTrip(t *testing.T) {
	for _, a := range []Answer{
		{Request: "r1", Removed: []string{"a.yaml", "b.yaml"}},
		{Request: "r2"},
		{Request: "r3", Error: "remove x: permission denied"},
		{Request: "r4", Waiting: "only one apiserver answers on https://10.0.0.1:6443"},
	} {
		if got := ParseAnswer(a.String()); got.String() != a.String() || got.Request != a.Request || got.Error != a.Error || got.Waiting != a.Waiting || !slices.Equal(got.Removed, a.Removed) {
			t.Errorf("ParseAnswer(%q) = %+v", a.String(), got)
		}
	}
}

// TestAgentAgainstRealAPI runs the agent against a real kube-apiserver: asked through the ConfigMap,
// it removes the bootstrap pods from its static pod directory and answers under its node's key;
// told to check its host's apiserver address, where only one apiserver answers, it waits instead
// and removes nothing.
func TestAgentAgainstRealAPI(t *testing.T) {
	cfg := apiservertest.Start(t)
	apiservertest.WaitReady(t, cfg)
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if _, err := client.CoreV1().ConfigMaps(Namespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: generator.PivotRecord, Namespace: Namespace},
		Data:       map[string]string{KeyTeardown: "req1", KeyTeardownSuccessor: "n2"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	answerOf := func(node string) func() (string, bool) {
		return func() (string, bool) {
			cm, err := client.CoreV1().ConfigMaps(Namespace).Get(ctx, generator.PivotRecord, metav1.GetOptions{})
			if err != nil {
				return err.Error(), false
			}
			a, ok := cm.Data[KeyTeardownDone+node]
			return a, ok
		}
	}
	waitFor := func(what string, get func() (string, bool), done func(string) bool) string {
		t.Helper()
		for {
			v, ok := get()
			if ok && done(v) {
				return v
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: last %q", what, v)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	// Node n2 checks its host's apiserver address first: one apiserver answers there.
	guarded := t.TempDir()
	writeFiles(t, guarded, "bootstrap-kube-apiserver.yaml", "kube-proxy.yaml")
	go Run(ctx, Options{Client: client, Config: cfg, Node: "n2", StaticPodDir: guarded, HostAPIServer: cfg.Host})
	answer := waitFor("the guarded agent's answer", answerOf("n2"), func(string) bool { return true })
	if a := ParseAnswer(answer); a.Request != "req1" || !strings.Contains(a.Waiting, "only one apiserver") || !strings.Contains(a.Waiting, "is ready on") {
		t.Errorf("guarded agent answered %q; want it to wait for a second ready apiserver", answer)
	}
	if got := listDir(t, guarded); !slices.Contains(got, "bootstrap-kube-apiserver.yaml") {
		t.Errorf("the guarded agent removed the only apiserver: %v", got)
	}

	// Node n1 has no apiserver of its own to check.
	dir := t.TempDir()
	writeFiles(t, dir, "bootstrap-kube-apiserver.yaml", "bootstrap-kube-controller-manager.yaml", "kube-proxy.yaml")
	go Run(ctx, Options{Client: client, Config: cfg, Node: "n1", StaticPodDir: dir})
	answer = waitFor("the agent's answer", answerOf("n1"), func(v string) bool { return strings.HasPrefix(v, "req1 ") })
	if want := "req1 removed bootstrap-kube-apiserver.yaml bootstrap-kube-controller-manager.yaml"; answer != want {
		t.Errorf("answer %q, want %q", answer, want)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"kube-proxy.yaml"}) {
		t.Errorf("left %v", got)
	}

	// A new request is answered anew.
	cm, _ := client.CoreV1().ConfigMaps(Namespace).Get(ctx, generator.PivotRecord, metav1.GetOptions{})
	cm.Data[KeyTeardown] = "req2"
	if _, err := client.CoreV1().ConfigMaps(Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	answer = waitFor("the answer to a second request", answerOf("n1"), func(v string) bool { return strings.HasPrefix(v, "req2 ") })
	if answer != "req2 removed nothing" {
		t.Errorf("second answer %q", answer)
	}
}
