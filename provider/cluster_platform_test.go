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
					if _, ok := a["platform_assets.matchbox/ignition/metal.worker.ign"]; !ok {
						return fmt.Errorf("platform_assets lacks the worker role's config")
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
