package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// roleConfigSpec is a cluster with role_config_url = url on line 3 and, with secrets, machines that
// fetch their secrets.
func roleConfigSpec(url string, secrets bool) string {
	fetch := ""
	if secrets {
		fetch = "\n  machine_secrets {\n    server = \"10.0.0.2:9443\"\n  }"
	}
	return fmt.Sprintf(`cluster "shared" {
  api_server      = "https://10.0.0.10:6443"
  role_config_url = %q%s
  controller "c1" { ip = "10.0.0.11" }
  worker "w1" { ip = "10.0.0.21" }
}
`, url, fetch)
}

// TestRoleConfigURL accepts an http or https URL that names the role, where machines that fetch
// their secrets get their role's config; and refuses, at the line it was written on, any other.
func TestRoleConfigURL(t *testing.T) {
	for _, url := range []string{"https://configs.example.com/shared/{role}.ign", "http://10.0.0.2:8080/ignition?role={role}"} {
		c, diags := spec.Parse([]byte(roleConfigSpec(url, true)), "shared.hcl")
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		full, err := spec.Complete(c)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		if got, want := full.RoleConfigAt("worker"), strings.ReplaceAll(url, "{role}", "worker"); got != want {
			t.Errorf("a worker fetches its role's config from %s, want %s", got, want)
		}
	}
	for _, tc := range []struct {
		name, url string
		secrets   bool
		want      string
	}{
		{"no role", "https://configs.example.com/shared/worker.ign", true,
			`shared.hcl:3: cluster.role_config_url: Role config URL without the role: "https://configs.example.com/shared/worker.ign" must name the role with {role}`},
		{"a file", "file:///srv/{role}.ign", true, `shared.hcl:3: cluster.role_config_url: Invalid role config URL`},
		{"no host", "https:///{role}.ign", true, `shared.hcl:3: cluster.role_config_url: Invalid role config URL`},
		{"a space", "https://configs.example.com/my configs/{role}.ign", true, `shared.hcl:3: cluster.role_config_url: Invalid role config URL`},
		{"secrets in the configs", "https://configs.example.com/{role}.ign", false,
			`shared.hcl:3: cluster.role_config_url: Role configs with secrets in them: a role's config goes to every machine of the role, so it may hold no private key or credential: set machine_secrets.server`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := spec.Parse([]byte(roleConfigSpec(tc.url, tc.secrets)), "shared.hcl")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			_, err := spec.Complete(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got\n  %v\nwant it to hold\n  %s", err, tc.want)
			}
			if inv, ok := spec.AsInvalid(err); !ok || len(inv.Problems) != 1 {
				t.Errorf("want exactly one problem: %v", err)
			}
		})
	}
}
