package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
)

func TestBootstrapTimeout(t *testing.T) {
	for _, tc := range []struct {
		config string
		err    bool
	}{
		{``, false},
		{`timeout = "20m"`, false},
		{`timeout = "1h30m"`, false},
		{`timeout = "soon"`, true},
		{`timeout = "30d"`, true},
		{`timeout = "-5m"`, true},
		{`timeout = "0s"`, true},
	} {
		t.Run(tc.config, func(t *testing.T) {
			dir := t.TempDir()
			config := requiredProviders + fmt.Sprintf("resource \"liftoff_bootstrap\" \"x\" {\n  dir = \"out\"\n  %s\n}\n", tc.config)
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
				t.Fatal(err)
			}
			out, code := newWorkdir(t, dir).run("validate")
			if tc.err != (code != 0) {
				t.Fatalf("terraform validate exited %d:\n%s", code, out)
			}
			if tc.err && (!strings.Contains(out, "Invalid timeout") || !strings.Contains(out, "positive duration")) {
				t.Errorf("terraform validate does not say what is wrong with the timeout:\n%s", out)
			}
		})
	}
}

// TestBootstrapDeleteWarns: a destroy leaves the cluster running and says so.
func TestBootstrapDeleteWarns(t *testing.T) {
	var resp resource.DeleteResponse
	(&bootstrapResource{}).Delete(context.Background(), resource.DeleteRequest{}, &resp)
	if resp.Diagnostics.ErrorsCount() != 0 || resp.Diagnostics.WarningsCount() != 1 {
		t.Fatalf("Delete returned %v; want one warning", resp.Diagnostics)
	}
	w := resp.Diagnostics.Warnings()[0]
	if w.Summary() != "The cluster keeps running" || !strings.Contains(w.Detail(), "only removes it from Terraform state") ||
		!strings.Contains(w.Detail(), "kube-system/liftoff-bootstrap") {
		t.Errorf("Delete's warning: %q: %q", w.Summary(), w.Detail())
	}
}

// unreachableDir is an output directory whose admin kubeconfig points at a port nothing listens on.
func unreachableDir(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + l.Addr().String()
	l.Close()
	dir := filepath.Join(t.TempDir(), "out")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`, server)
	if err := os.MkdirAll(filepath.Join(dir, generator.OutAuthDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, bootstrap.AdminKubeconfig), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// bootstrapState is a Terraform state holding liftoff_bootstrap.x of dir with the given status.
func bootstrapState(dir, status string) []byte {
	stage := func(name string) map[string]any {
		return map[string]any{"stage": name, "start": "2025-01-01T00:00:00Z", "end": "2025-01-01T00:00:01Z", "result": "done", "detail": nil}
	}
	state := map[string]any{
		"version": 4, "terraform_version": "1.11.4", "serial": 1, "lineage": "6d3ab4c6-0c55-4e2c-9b55-3d6c1c7e0001",
		"outputs": map[string]any{},
		"resources": []any{map[string]any{
			"mode": "managed", "type": "liftoff_bootstrap", "name": "x",
			"provider": `provider["` + Address + `"]`,
			"instances": []any{map[string]any{
				"schema_version": 0,
				"attributes": map[string]any{
					"id": dir, "dir": dir, "kubeconfig": nil, "timeout": nil, "manifests": map[string]string{},
					"mode": "static", "status": status, "completed": "2025-01-01T00:00:07Z",
					"stages":   []any{stage("wait-for-api"), stage("namespaces")},
					"handover": map[string]any{"requests": 70, "failed": 0, "retried": 1},
				},
				"sensitive_attributes": []any{},
			}},
		}},
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	return b
}

// TestBootstrapUnreachable: with the cluster's API down, a plan keeps what state says and warns,
// a bootstrap that was not complete is planned as an update (never a replacement), a timeout added
// changes state alone, and an import fails saying why.
func TestBootstrapUnreachable(t *testing.T) {
	out := unreachableDir(t)
	config := func(more string) string {
		return requiredProviders + fmt.Sprintf("resource \"liftoff_bootstrap\" \"x\" {\n  dir = %q\n  manifests = {}\n  %s\n}\n", out, more)
	}
	for _, tc := range []struct {
		name, status, config string
		code                 int
		want                 []string
		apply                bool
	}{
		{"complete", bootstrap.StatusComplete, "", 0, []string{"Cannot read the cluster's bootstrap record", "No changes"}, false},
		{"failed", bootstrap.StatusFailed, "", 2, []string{"Cannot read the cluster's bootstrap record", "Bootstrap is not complete",
			"will be updated in-place", "status    = \"failed\" -> (known after apply)", "1 to change, 0 to destroy"}, false},
		// Nothing for the cluster to do: the apply needs no API.
		{"timeout", bootstrap.StatusComplete, `timeout = "15m"`, 2, []string{"will be updated in-place", "+ timeout", "1 to change, 0 to destroy"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config(tc.config)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "terraform.tfstate"), bootstrapState(out, tc.status), 0o644); err != nil {
				t.Fatal(err)
			}
			w := newWorkdir(t, dir)
			plan, code := w.run("plan", "-detailed-exitcode")
			if code != tc.code {
				t.Fatalf("plan exited %d, want %d:\n%s", code, tc.code, plan)
			}
			for _, s := range tc.want {
				if !strings.Contains(plan, s) {
					t.Errorf("the plan does not say %q:\n%s", s, plan)
				}
			}
			if tc.code == 2 && tc.apply == strings.Contains(plan, "known after apply") {
				t.Errorf("the plan does not show what the apply will do:\n%s", plan)
			}
			if tc.apply {
				w.must("apply", "-auto-approve")
			}
			state := w.must("show", "-json")
			if !strings.Contains(state, `"status":"`+tc.status+`"`) || !strings.Contains(state, `"requests":70`) {
				t.Errorf("the state after the plan is not what it was:\n%s", state)
			}
		})
	}
	t.Run("import", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config("")), 0o644); err != nil {
			t.Fatal(err)
		}
		imp, code := newWorkdir(t, dir).run("import", "liftoff_bootstrap.x", out)
		if code == 0 || !strings.Contains(imp, "Cannot import the cluster's bootstrap") || !strings.Contains(imp, "connection refused") {
			t.Errorf("import of an unreachable cluster exited %d:\n%s", code, imp)
		}
	})
}

// TestBootstrapFails: a bootstrap that cannot finish fails naming its stage, and the stages it
// recorded are saved in state, with status failed, though the cluster's record cannot be read.
func TestBootstrapFails(t *testing.T) {
	dir := t.TempDir()
	config := requiredProviders + `
resource "liftoff_cluster" "c" {
  name       = "unreachable"
  api_server = "https://127.0.0.11:6443"
  host_cidrs = ["127.0.0.0/8"]
  controllers = {
    controller1 = { ip = "127.0.0.11" }
  }
  output_dir = "${path.module}/out"
}

resource "liftoff_bootstrap" "x" {
  dir     = liftoff_cluster.c.output_dir
  timeout = "3s"
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, dir)
	applied, code := w.run("apply", "-auto-approve")
	if code == 0 || !strings.Contains(applied, "Bootstrap failed in stage wait-for-api") ||
		!strings.Contains(applied, "did not finish within 3s") || !strings.Contains(applied, "Apply again to resume") {
		t.Fatalf("apply against a cluster that never answers exited %d:\n%s", code, applied)
	}
	t.Logf("the failed apply said:\n%s", applied[strings.Index(applied, "Error: "):])
	var doc struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string          `json:"address"`
					Tainted bool            `json:"tainted"`
					Values  json.RawMessage `json:"values"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(w.must("show", "-json")), &doc); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range doc.Values.RootModule.Resources {
		if r.Address != "liftoff_bootstrap.x" {
			continue
		}
		found = true
		var v struct {
			Status    string            `json:"status"`
			Mode      string            `json:"mode"`
			Manifests map[string]string `json:"manifests"`
			Stages    []struct{ Stage, Result, Detail string }
		}
		if err := json.Unmarshal(r.Values, &v); err != nil {
			t.Fatal(err)
		}
		if !r.Tainted || v.Status != bootstrap.StatusFailed || v.Mode != string(bootstrap.ModeStatic) || len(v.Manifests) == 0 ||
			len(v.Stages) != 1 || v.Stages[0].Stage != string(bootstrap.StageWaitAPI) || v.Stages[0].Result != bootstrap.ResultFailed ||
			v.Stages[0].Detail == "" {
			t.Errorf("state after the failed bootstrap: tainted %v, %s", r.Tainted, r.Values)
		}
	}
	if !found {
		t.Fatal("the failed bootstrap left nothing in state")
	}
}

// TestExampleLocalBootstrapPlans: examples/local's liftoff_bootstrap, off by default, plans when
// turned on. Its machines do not exist, so it is not applied.
func TestExampleLocalBootstrapPlans(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "examples", "local"), dir)
	plan := newWorkdir(t, dir).must("plan", "-var", "bootstrap=true")
	if !strings.Contains(plan, "liftoff_bootstrap.local[0] will be created") || !strings.Contains(plan, "Plan: 2 to add") {
		t.Errorf("examples/local with bootstrap=true does not plan the bootstrap:\n%s", plan)
	}
}
