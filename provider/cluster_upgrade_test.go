package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestClusterStateUpgrade writes the states of older versions and lets the real terraform CLI
// upgrade them: the plan is empty and the refreshed state is the current version. Version 0 kept
// machines as lists, versions 0 and 1 the bootstrap tokens' Secret manifest in key_material and
// asset_index indented.
func TestClusterStateUpgrade(t *testing.T) {
	for _, from := range []int{0, 1} {
		t.Run(fmt.Sprintf("version %d", from), func(t *testing.T) {
			t.Parallel()
			testClusterStateUpgrade(t, from)
		})
	}
}

func testClusterStateUpgrade(t *testing.T, from int) {
	dir := t.TempDir()
	config := requiredProviders + `
resource "liftoff_cluster" "old" {
  name        = "old"
  api_server  = "https://10.0.0.10:6443"
  host_cidrs  = ["10.0.0.0/24"]
  controllers = { c1 = { ip = "10.0.0.11" } }
  workers = {
    w1 = { ip = "10.0.0.21", labels = { pool = "a" } }
    w2 = { ip = "10.0.0.22", taints = ["gpu=true:NoSchedule"] }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	w := newWorkdir(t, dir)
	w.must("apply", "-auto-approve")

	// Turn the state into what schema version 0 stored.
	statePath := filepath.Join(dir, "terraform.tfstate")
	var state map[string]any
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	instance := state["resources"].([]any)[0].(map[string]any)["instances"].([]any)[0].(map[string]any)
	if instance["schema_version"] != float64(clusterSchemaVersion) {
		t.Fatalf("state has schema_version %v", instance["schema_version"])
	}
	instance["schema_version"] = from
	attributes := instance["attributes"].(map[string]any)
	keys := attributes["key_material"].(map[string]any)
	// Versions 0 and 1 kept the bootstrap tokens' Secret manifest with the keys, and the index as
	// index.json has it, indented.
	keys["manifests/00-bootstrap-token.yaml"] = "apiVersion: v1\nkind: Secret\n"
	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(attributes["asset_index"].(string)), "", "  "); err != nil {
		t.Fatal(err)
	}
	attributes["asset_index"] = indented.String() + "\n"
	delete(attributes, "role_ignition") // version 2's
	if from == 0 {
		// Version 0 predates these attributes.
		for _, a := range []string{"platform", "worker_pools", "rotate_bootstrap_tokens", "machine_secrets", "cni_plugins", "ignition_sha256", "worker_pool_ignition", "worker_pool_ignition_sha256"} {
			delete(attributes, a)
		}
		for _, role := range []string{"controllers", "workers"} {
			byName := attributes[role].(map[string]any)
			var names []string
			for n := range byName {
				names = append(names, n)
			}
			sort.Strings(names)
			var list []any
			for _, n := range names {
				m := byName[n].(map[string]any)
				m["name"] = n
				list = append(list, m)
			}
			attributes[role] = list
		}
	}
	state["serial"] = state["serial"].(float64) + 1
	raw, _ = json.MarshalIndent(state, "", "  ")
	if err := os.WriteFile(statePath, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after the upgrade is not empty (exit %d):\n%s", code, out)
	}
	w.must("apply", "-refresh-only", "-auto-approve")
	raw, _ = os.ReadFile(statePath)
	var upgraded struct {
		Resources []struct {
			Instances []struct {
				SchemaVersion int `json:"schema_version"`
				Attributes    struct {
					Workers map[string]struct {
						IP     string            `json:"ip"`
						Labels map[string]string `json:"labels"`
						Taints []string          `json:"taints"`
					} `json:"workers"`
					KeyMaterial map[string]string `json:"key_material"`
				} `json:"attributes"`
			} `json:"instances"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(raw, &upgraded); err != nil {
		t.Fatal(err)
	}
	got := upgraded.Resources[0].Instances[0]
	if got.SchemaVersion != clusterSchemaVersion || got.Attributes.Workers["w1"].Labels["pool"] != "a" ||
		got.Attributes.Workers["w2"].Taints[0] != "gpu=true:NoSchedule" || got.Attributes.Workers["w2"].IP != "10.0.0.22" {
		t.Fatalf("upgraded state: %+v", got)
	}
	for p := range got.Attributes.KeyMaterial {
		if !strings.HasPrefix(p, "pki/") {
			t.Errorf("key_material still holds %s", p)
		}
	}
}
