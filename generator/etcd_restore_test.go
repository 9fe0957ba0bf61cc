package generator_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/ignitiontest"
	"github.com/liftoff-k8s/liftoff/templates"
)

const restoreService = "liftoff-etcd-restore.service"

// restoreParts is what an Ignition config holds of the etcd restore: the unit, whether it is
// enabled, and the script.
type restoreParts struct {
	unit    string
	enabled bool
	script  *types.File
}

func restorePartsOf(t *testing.T, raw []byte) restoreParts {
	t.Helper()
	cfg, rep, err := ign.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("config/v3_4.Parse: %v %s", err, rep)
	}
	var p restoreParts
	for _, u := range cfg.Systemd.Units {
		if u.Name == restoreService && u.Contents != nil {
			p.unit, p.enabled = *u.Contents, u.Enabled != nil && *u.Enabled
		}
	}
	for i, f := range cfg.Storage.Files {
		if f.Path == generator.HostEtcdRestoreScript {
			p.script = &cfg.Storage.Files[i]
		}
	}
	return p
}

// withRestore puts an etcd_restore block into a spec's cluster block, before its first controller.
func withRestore(src, url, sha256 string) string {
	return strings.Replace(src, "\n  controller ", fmt.Sprintf("\n  etcd_restore {\n    url    = %q\n    sha256 = %q\n  }\n  controller ", url, sha256), 1)
}

// TestEtcdRestoreUnit renders the restore service and script for every way etcd reaches a
// controller: every controller gets the same, enabled and required by etcd.service, workers and the
// bootstrap machine get neither, and a spec without etcd_restore renders none. Real Ignition applies
// a controller's config, systemd's presets make etcd.service require the restore, and systemd
// accepts every unit as it lands.
func TestEtcdRestoreUnit(t *testing.T) {
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Fatal("systemctl is missing: run make deps (Debian package systemd)")
	}
	demo, err := os.ReadFile("../examples/demo/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	script, err := templates.FS.ReadFile(generator.EtcdRestoreScriptTemplate)
	if err != nil {
		t.Fatal(err)
	}
	sum := strings.Repeat("0f", 32)
	// A pre-signed URL: its percent-encoding reaches the script as written.
	url := "https://backups.example.com/demo/etcd.db?X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=ab12"
	image := "quay.io/coreos/etcd:v3.6.5@sha256:" + strings.Repeat("ab", 32)
	initial := "node1=https://10.0.0.11:2380,node2=https://10.0.0.12:2380,node3=https://10.0.0.13:2380"
	cases := []struct {
		name, src         string
		etcdutl           string
		controllers, none []string
	}{
		{
			name: "download", src: withRestore(string(demo), url, sum),
			etcdutl:     "/opt/bin/etcdutl",
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4"},
		},
		{
			name: "Fedora CoreOS, etcd in a container",
			src: strings.Replace(withRestore(strings.Replace(string(demo), `"flatcar"`, `"fcos"`, 1), url, sum),
				"\n  controller ", fmt.Sprintf("\n  etcd {\n    delivery = \"container\"\n    image = %q\n  }\n  controller ", image), 1),
			etcdutl: "/usr/bin/podman run --rm --network=host --security-opt label=disable " +
				"--volume /etc/kubernetes/pki:/etc/kubernetes/pki:ro --volume /var/lib/etcd:/var/lib/etcd " + image + " etcdutl",
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4"},
		},
		{
			// The restored cluster is the controllers': the bootstrap machine's member is temporary.
			name: "self-hosted, with a bootstrap machine",
			src: strings.Replace(strings.Replace(withRestore(string(demo), url, sum),
				"\n  controller ", "\n  bootstrap \"boot\" {\n    ip = \"10.0.0.5\"\n  }\n  controller ", 1),
				`control_plane       = "static"`, `control_plane = "self-hosted"`, 1),
			etcdutl:     "/opt/bin/etcdutl",
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4", "boot"},
		},
		{
			name: "no etcd_restore", src: string(demo),
			none: []string{"node1", "node2", "node3", "node4"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, res := renderSource(t, tc.src)
			for _, node := range tc.none {
				if p := restorePartsOf(t, res.Assets.Get("ignition/"+node+".ign").Data); p.unit != "" || p.script != nil {
					t.Errorf("%s gets the restore unit (%v) or the script (%v)", node, p.unit != "", p.script != nil)
				}
			}
			var first string
			for _, node := range tc.controllers {
				p := restorePartsOf(t, res.Assets.Get("ignition/"+node+".ign").Data)
				if p.unit == "" || !p.enabled {
					t.Fatalf("%s: restore unit %q, enabled %v", node, p.unit, p.enabled)
				}
				if p.script == nil || p.script.Mode == nil || *p.script.Mode != 0o755 ||
					string(generator.DecodeSource(t, p.script.Contents.Source, p.script.Contents.Compression)) != string(script) {
					t.Fatalf("%s: the script is missing or differs from %s", node, generator.EtcdRestoreScriptTemplate)
				}
				// Every controller gets the same: the script finds the member from its own configuration.
				if first == "" {
					first = p.unit
				} else if p.unit != first {
					t.Errorf("%s's restore unit differs from the first controller's", node)
				}
			}
			if len(tc.controllers) == 0 {
				return
			}
			unit := first
			env := unitEnvironment(t, unit)
			want := map[string]string{
				"LIFTOFF_ETCD_CONFIG":     generator.HostEtcdConfig,
				"LIFTOFF_ETCD_DATA_DIR":   generator.HostEtcdDataDir,
				"LIFTOFF_ETCD_JOIN":       generator.HostEtcdJoinScript,
				"LIFTOFF_ETCDUTL":         tc.etcdutl,
				"LIFTOFF_SNAPSHOT_URL":    strings.ReplaceAll(url, "%", "%%"),
				"LIFTOFF_SNAPSHOT_SHA256": sum,
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("service environment %s=%q, want %q", k, env[k], v)
				}
			}
			if got, want := unitSetting(unit, "ExecStart"), fmt.Sprintf("%s demo %s %d", generator.HostEtcdRestoreScript, initial, generator.EtcdRevisionBump); got != want {
				t.Errorf("ExecStart=%s, want %s", got, want)
			}
			for key, want := range map[string]string{
				"ConditionPathExists": "!/var/lib/etcd/member", "Before": "etcd.service", "RequiredBy": "etcd.service",
				"Type": "oneshot", "RequiresMountsFor": generator.HostEtcdDataDir,
			} {
				if got := unitSetting(unit, key); got != want {
					t.Errorf("%s=%s, want %s", key, got, want)
				}
			}

			// On the machine: Ignition writes the units and enables the restore by preset, systemd's
			// first boot applies the presets, and etcd.service then requires the restore.
			root := ignitiontest.Sysroot(t)
			raw := res.Assets.Get("ignition/" + tc.controllers[0] + ".ign").Data
			ignitiontest.MustApply(t, root, raw)
			if out, err := exec.Command("systemctl", "--root="+root, "preset-all").CombinedOutput(); err != nil {
				t.Fatalf("systemctl preset-all: %v\n%s", err, out)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/etcd.service.requires", restoreService)); err != nil {
				t.Errorf("etcd.service does not require %s once presets apply: %v", restoreService, err)
			}
			cfg, _, _ := ign.Parse(raw)
			var units []string
			for _, u := range cfg.Systemd.Units {
				if u.Contents != nil {
					units = append(units, u.Name)
				}
			}
			verifyUnits(t, root, units)
		})
	}
}
