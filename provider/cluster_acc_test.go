package provider

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/spec"
)

const testResource = "liftoff_cluster.test"

// testCluster writes a liftoff_cluster with one controller and the given workers (name → extra
// attributes, e.g. `ip = "10.0.0.21"`).
func testCluster(outputDir string, workers ...string) string {
	var w strings.Builder
	for _, spec := range workers {
		fmt.Fprintf(&w, "    %s\n", spec)
	}
	return fmt.Sprintf(`
resource "liftoff_cluster" "test" {
  name       = "acc"
  api_server = "https://10.0.0.10:6443"
  host_cidrs = ["10.0.0.0/24"]
  output_dir = %q

  controllers = {
    c1 = { ip = "10.0.0.11", domain = "c1.example.com" }
  }
  workers = {
%s  }
  worker_pools = {
    general = { size = 2, max_size = 4, labels = { pool = "general" } }
  }
}
`, outputDir, w.String())
}

// attrs returns the flattened state attributes of the test cluster.
func attrs(s *terraform.State) (map[string]string, error) {
	rs, ok := s.RootModule().Resources[testResource]
	if !ok {
		return nil, fmt.Errorf("no %s in state", testResource)
	}
	return rs.Primary.Attributes, nil
}

// snapshot keeps state attributes between steps.
type snapshot map[string]string

func (snap *snapshot) take(s *terraform.State) error {
	a, err := attrs(s)
	*snap = a
	return err
}

// notAfter finds a certificate's not_after in flattened state.
func notAfter(a map[string]string, certPath string) string {
	for k, v := range a {
		if strings.HasPrefix(k, "certificates.") && strings.HasSuffix(k, ".path") && v == certPath {
			return a[strings.TrimSuffix(k, ".path")+".not_after"]
		}
	}
	return ""
}

func parseCert(t *testing.T, data string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(data))
	if b == nil {
		t.Fatalf("not a PEM certificate: %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAccCluster walks one cluster through its life with the real terraform CLI: create, an empty
// re-plan, one worker changed, workers added and removed, a pool's bootstrap token rotated,
// certificates renewed inside the window, and destroy.
func TestAccCluster(t *testing.T) {
	terraformBinary(t)
	clock := newTestClock()
	warnings := &warningLog{}
	out := filepath.Join(t.TempDir(), "render")
	w1 := `w1 = { ip = "10.0.0.21", labels = { pool = "a" } }`
	w1Changed := `w1 = { ip = "10.0.0.21", labels = { pool = "b" } }`
	w2 := `w2 = { ip = "10.0.0.22", mac = "52:54:00:00:00:22" }`
	w3 := `w3 = { ip = "10.0.0.23" }`
	var created, before snapshot
	sensitive := sensitiveAttributes{testResource, []string{"ignition", "admin_kubeconfig", "key_material", "platform_assets"}}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(clock, warnings),
		CheckDestroy: func(*terraform.State) error {
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				return fmt.Errorf("destroy left %s behind (%v)", out, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: testCluster(out, w1, w2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate),
						plancheck.ExpectUnknownValue(testResource, tfPath("ignition")),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(testResource, "id", "acc"),
					resource.TestCheckResourceAttr(testResource, "ignition.%", "3"),
					resource.TestCheckResourceAttr(testResource, "platform_assets.%", "0"),
					resource.TestCheckResourceAttrWith(testResource, "worker_pool_ignition.general", func(v string) error { return butane.Check([]byte(v)) }),
					resource.TestCheckResourceAttrWith(testResource, "ca_certificate", prefixed("-----BEGIN CERTIFICATE-----")),
					resource.TestCheckResourceAttrWith(testResource, "admin_kubeconfig", containing("server: https://10.0.0.10:6443")),
					resource.TestCheckResourceAttrWith(testResource, "asset_index", containing(`"path":"ignition/w2.ign"`)),
					resource.TestCheckResourceAttrWith(testResource, "ignition.w1", func(v string) error { return butane.Check([]byte(v)) }),
					created.take,
					func(s *terraform.State) error {
						a, _ := attrs(s)
						if notAfter(a, "pki/apiserver/c1.crt") == "" {
							return fmt.Errorf("certificates lacks pki/apiserver/c1.crt: %v", a)
						}
						return renderOnDisk(out, a)
					},
				),
			},
			{
				// One worker's labels change: only its Ignition config does, and the plan knows it.
				Config: testCluster(out, w1Changed, w2),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						mapEntries{testResource, "ignition", map[string]string{"c1": same, "w1": changed, "w2": same}},
						mapEntries{testResource, "ignition_sha256", map[string]string{"c1": same, "w1": changed, "w2": same}},
						mapEntries{testResource, "worker_pool_ignition_sha256", map[string]string{"general": same}},
						unchangedEntries{testResource, "key_material", &created, nil},
						sensitive,
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					func(s *terraform.State) error {
						a, _ := attrs(s)
						if a["ignition.w1"] == created["ignition.w1"] {
							return fmt.Errorf("w1's labels changed but its config did not")
						}
						for _, k := range []string{"ignition.c1", "ignition.w2", "admin_kubeconfig", "key_material.pki/ca.key"} {
							if a[k] != created[k] {
								return fmt.Errorf("%s changed although only w1 did", k)
							}
						}
						return renderOnDisk(out, a)
					},
					before.take,
				),
			},
			{
				// w2 is renamed to w3, which is removing one and adding another: no one else changes.
				// w3's config holds its bootstrap token, which the apply issues.
				Config: testCluster(out, w1Changed, w3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						mapEntries{testResource, "ignition", map[string]string{"c1": same, "w1": same, "w2": removed, "w3": unknown}},
						mapEntries{testResource, "ignition_sha256", map[string]string{"c1": same, "w1": same, "w2": removed, "w3": unknown}},
						unchangedEntries{testResource, "key_material", &created, map[string]string{
							"pki/bootstrap-tokens/machines/w2": removed, "manifests/00-bootstrap-token.yaml": unknown}},
					},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(testResource, "ignition.%", "3"),
					resource.TestCheckNoResourceAttr(testResource, "ignition.w2"),
					resource.TestCheckResourceAttrWith(testResource, "ignition.w3", func(v string) error { return butane.Check([]byte(v)) }),
					before.take,
				),
			},
			{
				// The pool's bootstrap token is rotated: only the pool's config changes.
				Config: strings.Replace(testCluster(out, w1Changed, w3), "  worker_pools = {", "  rotate_bootstrap_tokens = { general = \"1\" }\n  worker_pools = {", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						mapEntries{testResource, "ignition", map[string]string{"c1": same, "w1": same, "w3": same}},
						mapEntries{testResource, "worker_pool_ignition", map[string]string{"general": unknown}},
						unchangedEntries{testResource, "key_material", &before, map[string]string{
							"pki/bootstrap-tokens/pools/general": unknown, "manifests/00-bootstrap-token.yaml": unknown}},
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					a, _ := attrs(s)
					if a["key_material.pki/bootstrap-tokens/pools/general"] == before["key_material.pki/bootstrap-tokens/pools/general"] {
						return fmt.Errorf("the pool's token was not rotated")
					}
					if a["worker_pool_ignition.general"] == before["worker_pool_ignition.general"] {
						return fmt.Errorf("the pool's config still holds its old token")
					}
					return nil
				},
			},
			{
				// Eleven months later the leaf certificates are inside the 30-day window: the plan
				// warns, shows which outputs change, and the apply renews them with the same CA.
				PreConfig: func() {
					warnings.take()
					clock.Advance(8760*time.Hour - 700*time.Hour)
				},
				Config: testCluster(out, w1Changed, w3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						// Workers hold no leaf certificate, so their configs stay as they are.
						mapEntries{testResource, "ignition", map[string]string{"c1": unknown, "w1": same, "w3": same}},
						mapEntries{testResource, "ignition_sha256", map[string]string{"c1": unknown, "w1": same, "w3": same}},
						mapEntries{testResource, "worker_pool_ignition", map[string]string{"general": same}},
						certificateFates{testResource, map[string]string{
							"pki/ca.crt": same, "pki/etcd/ca.crt": same, "pki/front-proxy-ca.crt": same,
							"pki/apiserver/c1.crt": unknown, "pki/admin.crt": unknown, "pki/etcd/c1/server.crt": unknown,
						}},
						plancheck.ExpectUnknownValue(testResource, tfPath("admin_kubeconfig")),
						plancheck.ExpectKnownValue(testResource, tfPath("ca_certificate"), stringValue(func() string { return created["ca_certificate"] })),
						sensitive,
					},
				},
				Check: func(s *terraform.State) error {
					got := strings.Join(warnings.take(), "\n")
					expiry := notAfter(before, "pki/apiserver/c1.crt")
					if !strings.Contains(got, "Certificates inside the renewal window") || !strings.Contains(got, "pki/apiserver/c1.crt") || !strings.Contains(got, expiry) {
						return fmt.Errorf("the plan did not warn about pki/apiserver/c1.crt expiring %s; warnings:\n%s", expiry, got)
					}
					if strings.Contains(got, "CA certificates inside") {
						return fmt.Errorf("the plan warned about CAs ten years from expiry:\n%s", got)
					}
					a, _ := attrs(s)
					if a["ca_certificate"] != created["ca_certificate"] || a["key_material.pki/ca.key"] != created["key_material.pki/ca.key"] {
						return fmt.Errorf("renewal replaced the CA")
					}
					if a["ignition.w1"] != before["ignition.w1"] {
						return fmt.Errorf("renewal changed a worker's config")
					}
					ca := parseCert(t, a["ca_certificate"])
					for _, p := range []string{"pki/apiserver/c1.crt", "pki/admin.crt", "pki/etcd/c1/peer.crt"} {
						old, renewed := parseCert(t, before["key_material."+p]), parseCert(t, a["key_material."+p])
						if !renewed.NotAfter.After(old.NotAfter.Add(300 * 24 * time.Hour)) {
							return fmt.Errorf("%s was not renewed: expires %s, before %s", p, renewed.NotAfter, old.NotAfter)
						}
						if p != "pki/etcd/c1/peer.crt" {
							if err := renewed.CheckSignatureFrom(ca); err != nil {
								return fmt.Errorf("renewed %s is not signed by the cluster CA: %w", p, err)
							}
						}
						if notAfter(a, p) != renewed.NotAfter.UTC().Format(time.RFC3339) {
							return fmt.Errorf("certificates lists %s expiring %s, the certificate says %s", p, notAfter(a, p), renewed.NotAfter)
						}
					}
					return renderOnDisk(out, a)
				},
			},
			{
				// Renewed certificates are far from the window again: nothing to warn about or do.
				PreConfig: func() { warnings.take() },
				Config:    testCluster(out, w1Changed, w3),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(*terraform.State) error {
					if w := warnings.take(); len(w) > 0 {
						return fmt.Errorf("unexpected warnings after renewal: %v", w)
					}
					return nil
				},
			},
		},
	})
}

// renderOnDisk checks that dir holds the render whose attributes are in state.
func renderOnDisk(dir string, a map[string]string) error {
	for _, m := range []string{"c1", "w1", "w2", "w3"} {
		want, inState := a["ignition."+m]
		data, err := os.ReadFile(filepath.Join(dir, "ignition", m+".ign"))
		switch {
		case inState && err != nil:
			return fmt.Errorf("output_dir: %w", err)
		case inState && string(data) != want:
			return fmt.Errorf("output_dir holds another ignition/%s.ign than state", m)
		case !inState && err == nil:
			return fmt.Errorf("output_dir still holds ignition/%s.ign", m)
		}
	}
	return nil
}

// tfPath is an attribute path in terraform's JSON plan.
func tfPath(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

// lazyString is a known string value that is looked up when the plan is checked, after the steps
// before it have run.
type lazyString func() string

func stringValue(f func() string) knownvalue.Check { return lazyString(f) }

func (l lazyString) CheckValue(v any) error {
	if s, ok := v.(string); !ok || s != l() {
		return fmt.Errorf("value is %.60q, want %.60q", v, l())
	}
	return nil
}

func (l lazyString) String() string { return l() }

func prefixed(p string) resource.CheckResourceAttrWithFunc {
	return func(v string) error {
		if !strings.HasPrefix(v, p) {
			return fmt.Errorf("%.40q does not start with %q", v, p)
		}
		return nil
	}
}

func containing(s string) resource.CheckResourceAttrWithFunc {
	return func(v string) error {
		if !strings.Contains(v, s) {
			return fmt.Errorf("value does not contain %q", s)
		}
		return nil
	}
}

// bootstrapMachineCluster is a self-hosted bare-metal cluster that pivots from a bootstrap machine
// with the given labels.
func bootstrapMachineCluster(bootLabels string) string {
	return fmt.Sprintf(`
resource "liftoff_cluster" "test" {
  name          = "acc"
  api_server    = "https://10.0.0.10:6443"
  host_cidrs    = ["10.0.0.0/24"]
  control_plane = "self-hosted"

  bootstrap   = { name = "boot", ip = "10.0.0.5", mac = "52:54:00:a1:9c:a0", labels = { %s } }
  controllers = { c1 = { ip = "10.0.0.11", mac = "52:54:00:a1:9c:ae" } }
  workers     = { w1 = { ip = "10.0.0.21", mac = "52:54:00:d4:11:9a" } }
  machine_secrets = { server = "10.0.0.2:9443" }
  platform = {
    matchbox = {
      matchbox_http_endpoint = "http://matchbox.example.com:8080"
      os_version             = "4230.2.3"
    }
  }
}
`, bootLabels)
}

// TestAccClusterBootstrapMachine applies a self-hosted cluster with a bootstrap machine: its
// Ignition config, which runs the bootstrap control plane, is exported beside the controllers' and
// served by matchbox like theirs, and a change to it alone changes its config alone.
func TestAccClusterBootstrapMachine(t *testing.T) {
	terraformBinary(t)
	bootstrapPod := generator.HostStaticPodDir + "/bootstrap-kube-apiserver.yaml"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config: bootstrapMachineCluster(`"example.com/temporary" = "true"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             []plancheck.PlanCheck{plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate)},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(testResource, "ignition.%", "3"),
					resource.TestCheckResourceAttrWith(testResource, "ignition.boot", func(v string) error { return butane.Check([]byte(v)) }),
					resource.TestCheckResourceAttrWith(testResource, "ignition.boot", containing(bootstrapPod)),
					resource.TestCheckResourceAttrSet(testResource, "ignition_sha256.boot"),
					resource.TestCheckResourceAttrSet(testResource, "platform_assets.matchbox/groups/acc-boot.json"),
					func(s *terraform.State) error {
						a, err := attrs(s)
						if err != nil {
							return err
						}
						if strings.Contains(a["ignition.c1"], bootstrapPod) {
							return fmt.Errorf("the controller runs the bootstrap control plane although the bootstrap machine does")
						}
						var idx generator.Index
						if err := json.Unmarshal([]byte(a["asset_index"]), &idx); err != nil {
							return err
						}
						for _, e := range idx.Assets {
							if e.Path == "ignition/boot.ign" {
								if e.Node != "boot" || e.Role != spec.RoleBootstrap {
									return fmt.Errorf("asset_index lists ignition/boot.ign as %+v", e)
								}
								return nil
							}
						}
						return fmt.Errorf("asset_index does not list ignition/boot.ign")
					},
				),
			},
			{
				// The bootstrap machine's labels are its own: no other machine's config changes.
				Config: bootstrapMachineCluster(`"example.com/temporary" = "yes"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						mapEntries{testResource, "ignition_sha256", map[string]string{"boot": changed, "c1": same, "w1": same}},
					},
				},
			},
		},
	})
}
