package generator

import (
	"encoding/json"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
)

// TestSharedRoleConfigs renders the example cluster with machine_secrets.server twice, with and
// without shared role configs. With them, each machine's config merges its role's by the URL the
// platform gave and the role config's sha512, and Ignition's merge of the two (the role's config
// merged into the machine's, as at boot) places exactly the files of the whole config. A worker
// whose snippet replaces a file of its role gets its whole config, since at boot the role's entry
// would win. Without machine_secrets.server the render is refused: a role's config goes to every
// machine of the role.
func TestSharedRoleConfigs(t *testing.T) {
	src := strings.Replace(mustRead(t, "../examples/demo/cluster.hcl"), `  controller "node1" {`,
		"  machine_secrets {\n    server = \"10.0.0.2:9443\"\n  }\n  controller \"node1\" {", 1)
	// node5 replaces the worker role's sysctl settings.
	src = strings.Replace(src, `  worker "node4" {`, `  worker "node5" {
    ip = "10.0.0.25"
    snippets = [<<-EOT
      variant: flatcar
      version: 1.1.0
      storage:
        files:
          - path: /etc/sysctl.d/liftoff-kubernetes.conf
            overwrite: true
            contents:
              inline: "vm.swappiness = 0\n"
    EOT
    ]
  }
  worker "node4" {`, 1)
	c := parseSpec(t, src)
	whole := render(t, c, nil, renderTime)
	url := func(role string) string { return "http://configs.example.com/" + role + ".ign" }
	shared, err := Render(c, Options{Now: renderTime, Existing: toFS(whole.Assets), RoleConfigURL: url})
	if err != nil {
		t.Fatal(err)
	}

	roles := map[string]igntypes.Config{}
	for _, a := range shared.Assets.Files {
		if a.Kind == KindRoleIgnition {
			if a.Path != "ignition/roles/"+a.Role+".ign" || a.Node != "" || a.Sensitive() {
				t.Errorf("role config %s: role %q, machine %q, mode %v", a.Path, a.Role, a.Node, a.Mode)
			}
			roles[a.Role] = parse(t, a.Data)
		}
	}
	if len(roles) != 2 {
		t.Fatalf("role configs for %d roles, want controller and worker", len(roles))
	}
	for _, a := range shared.Assets.Files {
		if a.Kind != KindIgnition || a.Node == "" {
			continue
		}
		cfg := parse(t, a.Data)
		want := placed(t, whole.Assets.Get(a.Path).Data)
		if a.Node == "node5" {
			if len(cfg.Ignition.Config.Merge) != 0 {
				t.Errorf("node5's snippet changes a file of its role, yet its config merges %s", *cfg.Ignition.Config.Merge[0].Source)
			}
			if got := placed(t, a.Data); !sameFiles(got, want) {
				t.Error("node5's config is not its whole config")
			}
			continue
		}
		if len(cfg.Ignition.Config.Merge) != 1 || *cfg.Ignition.Config.Merge[0].Source != url(a.Role) {
			t.Errorf("%s merges %v, want %s", a.Node, cfg.Ignition.Config.Merge, url(a.Role))
			continue
		}
		hash := *cfg.Ignition.Config.Merge[0].Verification.Hash
		if !strings.HasPrefix(hash, "sha512-") {
			t.Errorf("%s verifies its role's config by %s, want a sha512", a.Node, hash)
		}
		// What Ignition does at boot: the fetched config is merged into the referencing one.
		own := cfg
		own.Ignition.Config.Merge = nil
		booted, err := json.Marshal(ign.Merge(own, roles[a.Role]))
		if err != nil {
			t.Fatal(err)
		}
		if got := placed(t, booted); !sameFiles(got, want) {
			t.Errorf("%s: its config merged with its role's places other files than its whole config", a.Node)
		}
		if a.Role == "worker" && len(a.Data) > 4096 {
			t.Errorf("%s's own config is %d bytes", a.Node, len(a.Data))
		}
	}

	inline := parseSpec(t, mustRead(t, "../examples/demo/cluster.hcl"))
	if _, err := Render(inline, Options{Now: renderTime, RoleConfigURL: url}); err == nil || !strings.Contains(err.Error(), "machine_secrets.server") {
		t.Errorf("shared role configs with the secrets in the configs: %v, want an error naming machine_secrets.server", err)
	}
}

func parse(t *testing.T, raw []byte) igntypes.Config {
	t.Helper()
	cfg, rep, err := ign.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("not a valid Ignition config: %v %s", err, rep)
	}
	return cfg
}

func sameFiles(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for p, w := range want {
		if got[p] != w {
			return false
		}
	}
	return true
}
