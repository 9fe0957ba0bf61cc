package provider

import (
	"fmt"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/liftoff-k8s/liftoff/generator"
)

// restoreCluster is a cluster of three controllers and a worker; restore, when not empty, is its
// etcd_restore argument.
func restoreCluster(restore string) string {
	return fmt.Sprintf(`
resource "liftoff_cluster" "test" {
  name       = "acc"
  api_server = "https://10.0.0.10:6443"
  host_cidrs = ["10.0.0.0/24"]
  %s

  controllers = {
    c1 = { ip = "10.0.0.11" }
    c2 = { ip = "10.0.0.12" }
    c3 = { ip = "10.0.0.13" }
  }
  workers = {
    w1 = { ip = "10.0.0.21" }
  }
}
`, restore)
}

// restoreUnitOf is the liftoff-etcd-restore.service a machine's Ignition config holds, "" when none.
func restoreUnitOf(config string) (string, error) {
	cfg, _, err := ign.Parse([]byte(config))
	if err != nil {
		return "", err
	}
	for _, u := range cfg.Systemd.Units {
		if u.Name == "liftoff-etcd-restore.service" && u.Contents != nil {
			return *u.Contents, nil
		}
	}
	return "", nil
}

// TestAccClusterEtcdRestore recovers a cluster from a snapshot through terraform with the real CLI:
// applied again with etcd_restore, the cluster keeps its CA and every key and certificate of state,
// every controller's Ignition config restores the snapshot named by its URL and digest and no
// worker's does, and removing etcd_restore gives back the configs the cluster had before.
func TestAccClusterEtcdRestore(t *testing.T) {
	terraformBinary(t)
	const (
		url = "https://backups.example.com/acc/etcd.db"
		sum = "5e0f7b0c38c1e2c7a6f3f3a0b8c4d9e2f1a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3"
	)
	restore := fmt.Sprintf("etcd_restore = {\n    url    = %q\n    sha256 = %q\n  }", url, sum)
	var created snapshot
	controllers := []string{"c1", "c2", "c3"}
	everyCertificate := map[string]string{}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(newTestClock(), nil),
		Steps: []resource.TestStep{
			{
				Config: restoreCluster(""),
				Check: resource.ComposeAggregateTestCheckFunc(
					created.take,
					func(s *terraform.State) error {
						for k, v := range created {
							if p, ok := strings.CutPrefix(k, "key_material."); ok && strings.HasSuffix(p, ".crt") {
								everyCertificate[p] = same
							}
							if m, ok := strings.CutPrefix(k, "ignition."); ok && m != "%" {
								if unit, err := restoreUnitOf(v); err != nil || unit != "" {
									return fmt.Errorf("%s restores etcd without etcd_restore (%v):\n%s", m, err, unit)
								}
							}
						}
						if len(everyCertificate) == 0 || created["ca_certificate"] == "" {
							return fmt.Errorf("state holds no certificates")
						}
						return nil
					},
				),
			},
			{
				// The state keeps the PKI: applied with etcd_restore, only the controllers' configs change.
				Config: restoreCluster(restore),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
						mapEntries{testResource, "ignition", map[string]string{"c1": changed, "c2": changed, "c3": changed, "w1": same}},
						mapEntries{testResource, "ignition_sha256", map[string]string{"c1": changed, "c2": changed, "c3": changed, "w1": same}},
						unchangedEntries{testResource, "key_material", &created, nil},
						certificateFates{testResource, everyCertificate},
						plancheck.ExpectKnownValue(testResource, tfPath("ca_certificate"), stringValue(func() string { return created["ca_certificate"] })),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: func(s *terraform.State) error {
					a, err := attrs(s)
					if err != nil {
						return err
					}
					if a["ca_certificate"] != created["ca_certificate"] || a["admin_kubeconfig"] != created["admin_kubeconfig"] {
						return fmt.Errorf("applying etcd_restore changed the CA or the admin kubeconfig")
					}
					for k, v := range created {
						if strings.HasPrefix(k, "key_material.") && a[k] != v {
							return fmt.Errorf("applying etcd_restore changed %s", k)
						}
					}
					for _, m := range controllers {
						unit, err := restoreUnitOf(a["ignition."+m])
						if err != nil {
							return err
						}
						for _, line := range []string{
							`Environment="LIFTOFF_SNAPSHOT_URL=` + url + `"`,
							"Environment=LIFTOFF_SNAPSHOT_SHA256=" + sum,
							"ExecStart=" + generator.HostEtcdRestoreScript + " acc c1=https://10.0.0.11:2380,c2=https://10.0.0.12:2380,c3=https://10.0.0.13:2380 ",
							"ConditionPathExists=!" + generator.HostEtcdDataDir + "/member",
							"RequiredBy=etcd.service",
						} {
							if !strings.Contains(unit, line) {
								return fmt.Errorf("%s's restore unit lacks %q:\n%s", m, line, unit)
							}
						}
					}
					if unit, err := restoreUnitOf(a["ignition.w1"]); err != nil || unit != "" || a["ignition.w1"] != created["ignition.w1"] {
						return fmt.Errorf("the worker's config changed or restores etcd (%v):\n%s", err, unit)
					}
					return nil
				},
			},
			{
				// Removed once the cluster is back: the configs are again exactly what they were.
				Config: restoreCluster(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						mapEntries{testResource, "ignition", map[string]string{"c1": changed, "c2": changed, "c3": changed, "w1": same}},
						unchangedEntries{testResource, "key_material", &created, nil},
					},
				},
				Check: func(s *terraform.State) error {
					a, err := attrs(s)
					if err != nil {
						return err
					}
					for _, m := range append(controllers, "w1") {
						if a["ignition."+m] != created["ignition."+m] {
							unit, _ := restoreUnitOf(a["ignition."+m])
							return fmt.Errorf("%s's config differs from before etcd_restore; its restore unit:\n%s", m, unit)
						}
					}
					return nil
				},
			},
		},
	})
}
