package generator_test

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/templates"
)

const (
	snapshotService = "liftoff-etcd-snapshot.service"
	snapshotTimer   = "liftoff-etcd-snapshot.timer"
)

// snapshotParts is what an Ignition config holds of the etcd snapshots: each unit's contents and
// whether it is enabled, and the script.
type snapshotParts struct {
	units   map[string]string
	enabled map[string]bool
	script  *types.File
}

func snapshotPartsOf(t *testing.T, raw []byte) snapshotParts {
	t.Helper()
	cfg, rep, err := ign.Parse(raw)
	if err != nil || len(rep.Entries) > 0 {
		t.Fatalf("config/v3_4.Parse: %v %s", err, rep)
	}
	p := snapshotParts{units: map[string]string{}, enabled: map[string]bool{}}
	for _, u := range cfg.Systemd.Units {
		if strings.HasPrefix(u.Name, "liftoff-etcd-snapshot.") {
			p.units[u.Name] = *u.Contents
			p.enabled[u.Name] = u.Enabled != nil && *u.Enabled
		}
	}
	for i, f := range cfg.Storage.Files {
		if f.Path == generator.HostEtcdSnapshotScript {
			p.script = &cfg.Storage.Files[i]
		}
	}
	return p
}

// unitSetting is the value of the one line KEY=VALUE of a unit, "" when it has none.
func unitSetting(unit, key string) string {
	for _, line := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return v
		}
	}
	return ""
}

// unitEnvironment is a service's Environment= assignments.
func unitEnvironment(t *testing.T, unit string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(unit, "\n") {
		v, ok := strings.CutPrefix(line, "Environment=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, `"`) {
			v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
		}
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			t.Fatalf("Environment line %q", line)
		}
		env[k] = val
	}
	return env
}

// systemdMicroseconds is how systemd reads a time span, in microseconds.
func systemdMicroseconds(t *testing.T, span string) int64 {
	t.Helper()
	out, err := exec.Command("systemd-analyze", "timespan", span).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze timespan %q: %v\n%s", span, err, out)
	}
	m := regexp.MustCompile(`μs: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze timespan %q: %s", span, out)
	}
	var us int64
	fmt.Sscan(string(m[1]), &us)
	return us
}

// TestEtcdSnapshotUnits renders the snapshot timer, service and script for every way etcd reaches a
// controller: controllers get them, with the timer enabled, workers and the bootstrap machine do
// not, enabled = false takes them away, and systemd accepts the units as they are.
func TestEtcdSnapshotUnits(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing: run make deps (Debian package systemd)")
	}
	demo, err := os.ReadFile("../examples/demo/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	image := "quay.io/coreos/etcd:v3.6.5@sha256:" + strings.Repeat("ab", 32)
	// settings go into the demo spec's cluster block.
	withSettings := func(os string, settings ...string) string {
		s := strings.Replace(string(demo), `"flatcar"`, fmt.Sprintf("%q", os), 1)
		return strings.Replace(s, "  controller \"node1\" {", strings.Join(settings, "\n")+"\n  controller \"node1\" {", 1)
	}
	cases := []struct {
		name, src string
		// etcdctl and etcdutl are the commands the service runs them with; none when off.
		etcdctl, etcdutl  string
		keep              string
		interval, onBoot  time.Duration
		spread            time.Duration
		controllers, none []string
	}{
		{
			name: "defaults", src: string(demo),
			etcdctl: "/opt/bin/etcdctl", etcdutl: "/opt/bin/etcdutl", keep: "24",
			interval: time.Hour, onBoot: 15 * time.Minute, spread: 6 * time.Minute,
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4"},
		},
		{
			name: "every 90 minutes, 3 kept, Fedora CoreOS, etcd in a container",
			src: withSettings("fcos", `  etcd_snapshots {
    interval = "90m"
    keep     = 3
  }`, fmt.Sprintf("  etcd {\n    delivery = \"container\"\n    image = %q\n  }", image)),
			etcdctl: "/usr/bin/podman run --rm --network=host --security-opt label=disable " +
				"--volume /etc/kubernetes/pki:/etc/kubernetes/pki:ro --volume /var/lib/etcd-snapshots:/var/lib/etcd-snapshots " + image + " etcdctl",
			etcdutl: "/usr/bin/podman run --rm --network=host --security-opt label=disable " +
				"--volume /etc/kubernetes/pki:/etc/kubernetes/pki:ro --volume /var/lib/etcd-snapshots:/var/lib/etcd-snapshots " + image + " etcdutl",
			keep: "3", interval: 90 * time.Minute, onBoot: 15 * time.Minute, spread: 9 * time.Minute,
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4"},
		},
		{
			name: "every 5 minutes on Flatcar, etcd as a sysext",
			src: withSettings("flatcar", `  etcd_snapshots { interval = "5m" }`,
				fmt.Sprintf("  etcd {\n    delivery = \"sysext\"\n    url = \"https://example.com/etcd-{version}-{arch}.raw\"\n    sha512 = %q\n  }", strings.Repeat("cd", 64))),
			etcdctl: "/usr/bin/etcdctl", etcdutl: "/usr/bin/etcdutl", keep: "24",
			interval: 5 * time.Minute, onBoot: 5 * time.Minute, spread: 30 * time.Second,
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4"},
		},
		{
			name: "daily, with a bootstrap machine",
			src: strings.Replace(withSettings("flatcar", `  etcd_snapshots { interval = "1d" }`, "  bootstrap \"boot\" {\n    ip = \"10.0.0.5\"\n  }"),
				`control_plane       = "static"`, `control_plane = "self-hosted"`, 1),
			etcdctl: "/opt/bin/etcdctl", etcdutl: "/opt/bin/etcdutl", keep: "24",
			interval: 24 * time.Hour, onBoot: 15 * time.Minute, spread: 15 * time.Minute,
			controllers: []string{"node1", "node2", "node3"}, none: []string{"node4", "boot"},
		},
		{
			name: "off", src: withSettings("flatcar", `  etcd_snapshots { enabled = false }`),
			none: []string{"node1", "node2", "node3", "node4"},
		},
	}
	script, err := templates.FS.ReadFile("butane/liftoff-etcd-snapshot.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, res := renderSource(t, tc.src)
			for _, node := range tc.none {
				p := snapshotPartsOf(t, res.Assets.Get("ignition/"+node+".ign").Data)
				if len(p.units) > 0 || p.script != nil {
					t.Errorf("%s gets units %v and the script %v", node, slices.Sorted(maps.Keys(p.units)), p.script != nil)
				}
			}
			var first string
			for _, node := range tc.controllers {
				raw := res.Assets.Get("ignition/" + node + ".ign").Data
				p := snapshotPartsOf(t, raw)
				if !p.enabled[snapshotTimer] || p.enabled[snapshotService] || p.units[snapshotService] == "" {
					t.Fatalf("%s: units %v enabled %v, want the service and the timer, the timer enabled", node, slices.Sorted(maps.Keys(p.units)), p.enabled)
				}
				if p.script == nil || p.script.Mode == nil || *p.script.Mode != 0o755 ||
					string(generator.DecodeSource(t, p.script.Contents.Source, p.script.Contents.Compression)) != string(script) {
					t.Fatalf("%s: the script is missing or differs from templates/butane/liftoff-etcd-snapshot.sh", node)
				}
				// Every controller gets the same: the script finds the member from its own configuration.
				if both := p.units[snapshotService] + p.units[snapshotTimer]; first == "" {
					first = both
				} else if both != first {
					t.Errorf("%s's snapshot units differ from the first controller's", node)
				}
			}
			if len(tc.controllers) == 0 {
				return
			}
			p := snapshotPartsOf(t, res.Assets.Get("ignition/"+tc.controllers[0]+".ign").Data)
			service, timer := p.units[snapshotService], p.units[snapshotTimer]
			env := unitEnvironment(t, service)
			want := map[string]string{
				"LIFTOFF_ETCD_CONFIG":  generator.HostEtcdConfig,
				"LIFTOFF_ETCD_CA":      path.Join(generator.HostPKIDir, generator.EtcdCACert),
				"LIFTOFF_ETCD_CERT":    path.Join(generator.HostPKIDir, generator.APIServerEtcdCert),
				"LIFTOFF_ETCD_KEY":     path.Join(generator.HostPKIDir, generator.APIServerEtcdKey),
				"LIFTOFF_SNAPSHOT_DIR": generator.HostEtcdSnapshotDir,
				"LIFTOFF_ETCDCTL":      tc.etcdctl,
				"LIFTOFF_ETCDUTL":      tc.etcdutl,
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("service environment %s=%q, want %q", k, env[k], v)
				}
			}
			if got, want := unitSetting(service, "ExecStart"), generator.HostEtcdSnapshotScript+" demo "+tc.keep; got != want {
				t.Errorf("ExecStart=%s, want %s", got, want)
			}
			for _, s := range []struct {
				unit, key string
				want      time.Duration
			}{
				{timer, "OnUnitActiveSec", tc.interval}, {timer, "OnBootSec", tc.onBoot},
				{timer, "RandomizedDelaySec", tc.spread}, {service, "TimeoutStartSec", tc.interval},
			} {
				if got := systemdMicroseconds(t, unitSetting(s.unit, s.key)); got != s.want.Microseconds() {
					t.Errorf("%s=%s is %v to systemd, want %v", s.key, unitSetting(s.unit, s.key), time.Duration(got)*time.Microsecond, s.want)
				}
			}
			if unitSetting(timer, "WantedBy") != "timers.target" {
				t.Errorf("the timer is not wanted by timers.target:\n%s", timer)
			}

			// systemd verifies the units as a controller holds them, with the programs they start.
			root := t.TempDir()
			for name, text := range p.units {
				writeRootFile(t, root, "/etc/systemd/system/"+name, []byte(text), 0o644)
			}
			writeRootFile(t, root, generator.HostEtcdSnapshotScript, script, 0o755)
			verifyUnits(t, root, []string{snapshotService, snapshotTimer})
		})
	}
}

func writeRootFile(t *testing.T, root, p string, data []byte, mode os.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, data, mode); err != nil {
		t.Fatal(err)
	}
}
