package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

func platformCluster(workerMAC string) string { return platformClusterLabelled(workerMAC, "") }

// platformClusterLabelled is platformCluster with a second worker, w2, and w1 labelled pool=label.
func platformClusterLabelled(workerMAC, label string) string {
	mac := ""
	if workerMAC != "" {
		mac = fmt.Sprintf(", mac = %q", workerMAC)
	}
	workers := fmt.Sprintf(`{ w1 = { ip = "10.0.0.21"%s } }`, mac)
	if label != "" {
		workers = fmt.Sprintf(`{
    w1 = { ip = "10.0.0.21"%s, labels = { pool = %q } }
    w2 = { ip = "10.0.0.22", mac = "52:54:00:d4:11:9b" }
  }`, mac, label)
	}
	return fmt.Sprintf(`
resource "liftoff_cluster" "metal" {
  name        = "metal"
  api_server  = "https://10.0.0.10:6443"
  host_cidrs  = ["10.0.0.0/24"]
  controllers = { c1 = { ip = "10.0.0.11", mac = "52:54:00:a1:9c:ae" } }
  workers     = %s
  machine_secrets = { server = "10.0.0.2:9443" }
  platform = {
    matchbox = {
      matchbox_http_endpoint = "http://matchbox.example.com:8080"
      os_version             = "4230.2.3"
    }
  }
}
`, workers)
}

// TestAccClusterPlatform renders a bare-metal cluster's matchbox groups and profiles into
// platform_assets, and refuses a machine matchbox cannot tell apart with the platform's own words.
// A change to one worker changes its own config alone.
func TestAccClusterPlatform(t *testing.T) {
	terraformBinary(t)
	var matchboxAssets snapshot
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config:      platformCluster(""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing MAC address.*w1 = \{ ip = "10.0.0.21" \}.*Field worker.w1.mac`),
			},
			{
				Config: platformCluster("52:54:00:d4:11:9a"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					a := s.RootModule().Resources["liftoff_cluster.metal"].Primary.Attributes
					var groups, profiles int
					for k := range a {
						switch {
						case strings.HasPrefix(k, "platform_assets.matchbox/groups/"):
							groups++
						case strings.HasPrefix(k, "platform_assets.matchbox/profiles/"):
							profiles++
						}
					}
					if groups == 0 || profiles == 0 {
						return fmt.Errorf("platform_assets has %d matchbox groups and %d profiles", groups, profiles)
					}
					if !strings.Contains(a["asset_index"], `"kind":"matchbox-profile"`) {
						return fmt.Errorf("asset_index does not list the matchbox profiles")
					}
					// matchbox serves each machine's config as it is: state keeps one copy, in ignition.
					if !strings.Contains(a["asset_index"], `"path":"matchbox/ignition/metal-w1.ign"`) {
						return fmt.Errorf("asset_index does not list matchbox/ignition/metal-w1.ign")
					}
					if _, twice := a["platform_assets.matchbox/ignition/metal-w1.ign"]; twice {
						return fmt.Errorf("platform_assets repeats w1's Ignition config")
					}
					// The install config is shared by the machines that install to the same disk, the
					// role's config by the machines of the role.
					var installs int
					for k := range a {
						if strings.HasPrefix(k, "platform_assets.matchbox/ignition/metal.install-") {
							installs++
						}
					}
					if installs != 1 {
						return fmt.Errorf("platform_assets has %d install configs, want one for the one install disk", installs)
					}
					// matchbox serves the role's config as it is: state keeps one copy, in role_ignition.
					if a["role_ignition.worker"] == "" || a["role_ignition.controller"] == "" {
						return fmt.Errorf("role_ignition lacks a role's config: %q", a["role_ignition.%"])
					}
					if _, twice := a["platform_assets.matchbox/ignition/metal.worker.ign"]; twice {
						return fmt.Errorf("platform_assets repeats the worker role's config")
					}
					return nil
				},
			},
			{
				Config: platformClusterLabelled("52:54:00:d4:11:9a", "a"),
				Check: func(s *terraform.State) error {
					matchboxAssets = s.RootModule().Resources["liftoff_cluster.metal"].Primary.Attributes
					return nil
				},
			},
			{
				// One worker's labels change: its own config does, and nothing matchbox serves
				// besides: the role's config, the other machines' and the groups stay as they are.
				Config: platformClusterLabelled("52:54:00:d4:11:9a", "b"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						mapEntries{"liftoff_cluster.metal", "ignition", map[string]string{"c1": same, "w1": changed, "w2": same}},
						mapEntries{"liftoff_cluster.metal", "role_ignition", map[string]string{"controller": same, "worker": same}},
						unchangedEntries{"liftoff_cluster.metal", "platform_assets", &matchboxAssets, nil},
					},
				},
			},
		},
	})
}

func libvirtCluster(image string) string {
	return fmt.Sprintf(`
resource "liftoff_cluster" "vms" {
  name        = "vms"
  api_server  = "https://10.0.0.11:6443"
  host_cidrs  = ["10.0.0.0/24"]
  controllers = { c1 = { ip = "10.0.0.11" } }
  workers     = { w1 = { ip = "10.0.0.21" } }
  platform = {
    libvirt = {
      image         = %q
      worker_memory = 3072
    }
  }
}
`, image)
}

// TestAccClusterLibvirt offers the libvirt platform, which the provider has no code of its own for:
// its settings come from the platform's package, its mistakes are refused with the platform's own
// words and field, and its files are exported in platform_assets.
func TestAccClusterLibvirt(t *testing.T) {
	terraformBinary(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config:      libvirtCluster("images/flatcar.img"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Invalid image.*Field platform.libvirt.image`),
			},
			{
				Config: libvirtCluster("/var/lib/libvirt/images/flatcar.img"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					a := s.RootModule().Resources["liftoff_cluster.vms"].Primary.Attributes
					if !strings.Contains(a["platform_assets.libvirt/network.xml"], `<host mac="`) {
						return fmt.Errorf("platform_assets lacks the network with its reservations: %q", a["platform_assets.libvirt/network.xml"])
					}
					if w1 := a["platform_assets.libvirt/domains/w1.xml"]; !strings.Contains(w1, `<memory unit="MiB">3072</memory>`) {
						return fmt.Errorf("w1's domain does not have worker_memory: %q", w1)
					}
					return nil
				},
			},
		},
	})
}

// TestAccClusterRoleConfigURL renders a cluster whose machines merge their roles' configs from
// role_config_url: role_ignition holds the configs to serve there, and a worker's config holds its
// own files and the reference. matchbox, which serves the role configs itself, refuses the setting.
func TestAccClusterRoleConfigURL(t *testing.T) {
	terraformBinary(t)
	const config = `
resource "liftoff_cluster" "shared" {
  name            = "shared"
  api_server      = "https://10.0.0.10:6443"
  host_cidrs      = ["10.0.0.0/24"]
  controllers     = { c1 = { ip = "10.0.0.11" } }
  workers         = { w1 = { ip = "10.0.0.21" } }
  machine_secrets = { server = "10.0.0.2:9443" }
  role_config_url = "https://configs.example.com/shared/{role}.ign"
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config:      strings.Replace(platformCluster("52:54:00:d4:11:9a"), "machine_secrets", `role_config_url = "https://configs.example.com/{role}.ign"`+"\n  machine_secrets", 1),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Role configs served by matchbox.*remove\s+role_config_url`),
			},
			{
				Config: config,
				Check: func(s *terraform.State) error {
					a := s.RootModule().Resources["liftoff_cluster.shared"].Primary.Attributes
					if a["role_ignition.%"] != "2" || a["role_ignition.worker"] == "" || a["role_ignition.controller"] == "" {
						return fmt.Errorf("role_ignition has %s configs, want the controller's and the worker's", a["role_ignition.%"])
					}
					w1 := a["ignition.w1"]
					if !strings.Contains(w1, `"source":"https://configs.example.com/shared/worker.ign"`) || !strings.Contains(w1, `"hash":"sha512-`) {
						return fmt.Errorf("w1's config does not merge the worker role's by URL and sha512:\n%s", w1)
					}
					if len(w1) > 2048 {
						return fmt.Errorf("w1's own config is %d bytes", len(w1))
					}
					return nil
				},
			},
		},
	})
}
