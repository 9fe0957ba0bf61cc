package provider

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// TestAccClusterImport moves a cluster rendered by `liftoff render` to Terraform: importing the
// output directory keeps its key material, so for the same spec the first apply changes no
// machine's config and the CA stays the CLI's.
func TestAccClusterImport(t *testing.T) {
	terraformBinary(t)
	cli := goBuild(t, "github.com/liftoff-k8s/liftoff/cmd/liftoff", "liftoff")
	dir := t.TempDir()
	spec := `cluster "moved" {
  api_server = "https://10.0.0.10:6443"
  host_cidrs = ["10.0.0.0/24"]
  controller "c1" {
    ip     = "10.0.0.11"
    domain = "c1.example.com"
  }
  worker "w1" {
    ip     = "10.0.0.21"
    labels = { pool = "a" }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "cluster.hcl"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(dir, "out")
	if out, err := exec.Command(filepath.Join(cli, "liftoff"), "render", "--spec", filepath.Join(dir, "cluster.hcl"), "--out", rendered).CombinedOutput(); err != nil {
		t.Fatalf("liftoff render: %v\n%s", err, out)
	}
	file := func(p string) string {
		b, err := os.ReadFile(filepath.Join(rendered, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	matchesCLI := func(s *terraform.State) error {
		a := s.RootModule().Resources["liftoff_cluster.moved"].Primary.Attributes
		for attr, p := range map[string]string{
			"ignition.c1": "ignition/c1.ign", "ignition.w1": "ignition/w1.ign", "admin_kubeconfig": "auth/admin.conf",
			"ca_certificate": "pki/ca.crt", "key_material.pki/ca.key": "pki/ca.key", "key_material.pki/apiserver/c1.crt": "pki/apiserver/c1.crt",
		} {
			if a[attr] != file(p) {
				return fmt.Errorf("%s is not the CLI's %s", attr, p)
			}
		}
		return nil
	}
	config := `
resource "liftoff_cluster" "moved" {
  name        = "moved"
  api_server  = "https://10.0.0.10:6443"
  host_cidrs  = ["10.0.0.0/24"]
  controllers = { c1 = { ip = "10.0.0.11", domain = "c1.example.com" } }
  workers     = { w1 = { ip = "10.0.0.21", labels = { pool = "a" } } }
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config:        config,
				ResourceName:  "liftoff_cluster.moved",
				ImportState:   true,
				ImportStateId: filepath.Join(dir, "missing"),
				ExpectError:   regexp.MustCompile(`Cannot import the output directory`),
			},
			{
				Config:             config,
				ResourceName:       "liftoff_cluster.moved",
				ImportState:        true,
				ImportStateId:      rendered,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if len(states) != 1 || states[0].Attributes["name"] != "moved" {
						return fmt.Errorf("imported %v", states)
					}
					return matchesCLI(&terraform.State{Modules: []*terraform.ModuleState{{Path: []string{"root"},
						Resources: map[string]*terraform.ResourceState{"liftoff_cluster.moved": {Primary: states[0]}}}}})
				},
			},
			{
				// The arguments arrive; the configs are the CLI's to the byte.
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("liftoff_cluster.moved", plancheck.ResourceActionUpdate),
						mapEntries{"liftoff_cluster.moved", "ignition", map[string]string{"c1": same, "w1": same}},
					},
				},
				Check: matchesCLI,
			},
		},
	})
}
