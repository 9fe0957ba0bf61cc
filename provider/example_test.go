package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
)

// copyDir copies the regular files of src (not its subdirectories) into dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tf") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExampleLocal applies examples/local with the built provider as a user would, through a
// development override and no registry: the apply works, a second plan is empty, a changed worker
// shows in the plan without revealing key material, and destroy removes what was written.
func TestExampleLocal(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "examples", "local"), dir)
	w := newWorkdir(t, dir)

	w.must("apply", "-auto-approve")
	if _, err := os.Stat(filepath.Join(dir, "out", "index.json")); err != nil {
		t.Fatalf("the apply did not write out/: %v", err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("second plan is not empty (exit %d):\n%s", code, out)
	}
	kubeconfig := w.must("output", "-raw", "kubeconfig")
	if !strings.Contains(kubeconfig, "server: https://127.0.0.11:6443") || !strings.Contains(kubeconfig, "client-key-data:") {
		t.Errorf("kubeconfig output is not an admin kubeconfig for the cluster:\n%s", kubeconfig)
	}
	var ignition map[string]string
	if err := json.Unmarshal([]byte(w.must("output", "-json", "ignition")), &ignition); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"controller1", "worker1", "worker2"} {
		if err := butane.Check([]byte(ignition[m])); err != nil {
			t.Errorf("ignition[%s] is not an Ignition 3.4.0 config: %v", m, err)
		}
	}

	// Change one worker: the plan says which and shows no secret.
	main := filepath.Join(dir, "main.tf")
	src, _ := os.ReadFile(main)
	edited := strings.Replace(string(src), `"example.com/pool" = "b"`, `"example.com/pool" = "c"`, 1)
	if edited == string(src) {
		t.Fatal("the example no longer has worker2's pool label")
	}
	if err := os.WriteFile(main, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, code := w.run("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "1 to change") {
		t.Fatalf("plan after changing worker2 (exit %d):\n%s", code, plan)
	}
	// The plan names the one machine whose config changes.
	if !regexp.MustCompile(`~ "worker2"\s+= "[0-9a-f]{64}" -> "[0-9a-f]{64}"`).MatchString(plan) ||
		strings.Contains(plan, `~ "worker1"`) || strings.Contains(plan, `~ "controller1"`) {
		t.Errorf("the plan does not show worker2's config alone changing:\n%s", plan)
	}
	tokens, err := generator.ReadBootstrapTokens(os.DirFS(filepath.Join(dir, "out")))
	if err != nil || len(tokens) == 0 {
		t.Fatalf("bootstrap tokens: %v %v", tokens, err)
	}
	secrets := []string{"PRIVATE KEY", "client-key-data"}
	for _, tok := range tokens {
		secrets = append(secrets, tok.Secret)
	}
	for _, secret := range secrets {
		if strings.Contains(plan, secret) {
			t.Errorf("the plan reveals %q:\n%s", secret, plan)
		}
	}

	// A file of out/ removed by hand is noticed and written again.
	if err := os.WriteFile(main, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "out", "ignition", "worker1.ign")); err != nil {
		t.Fatal(err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 2 || !strings.Contains(out, "output_dir") {
		t.Fatalf("plan after removing out/ignition/worker1.ign (exit %d):\n%s", code, out)
	}
	w.must("apply", "-auto-approve")
	if _, err := os.Stat(filepath.Join(dir, "out", "ignition", "worker1.ign")); err != nil {
		t.Fatalf("the apply did not write out/ignition/worker1.ign again: %v", err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after restoring out/ is not empty (exit %d):\n%s", code, out)
	}

	w.must("destroy", "-auto-approve")
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("destroy left out/ behind (%v)", err)
	}
}
