package generator_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/ignitiontest"
	"github.com/liftoff-k8s/liftoff/spec"
)

// renderSource validates and renders a spec given as text, now.
func renderSource(t *testing.T, src string) (*spec.Cluster, *generator.Result) {
	t.Helper()
	c, diags := spec.Parse([]byte(src), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := generator.Render(full, generator.Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return full, res
}

// TestRealIgnitionAppliesEveryConfig applies each rendered config with the real Ignition binary
// into a sysroot, checks that every file landed with its mode and content and every unit with its
// enablement, and has systemd verify the units.
func TestRealIgnitionAppliesEveryConfig(t *testing.T) {
	for _, osName := range []string{"flatcar", "fcos"} {
		t.Run(osName, func(t *testing.T) {
			src, err := os.ReadFile("../examples/demo/cluster.hcl")
			if err != nil {
				t.Fatal(err)
			}
			withPool := strings.Replace(string(src), `  worker "node4" {`, `  worker_pool "general" {
    size   = 3
    labels = { "pool" = "general" }
  }
  worker "node4" {`, 1)
			_, res := renderSource(t, strings.Replace(withPool, `"flatcar"`, fmt.Sprintf("%q", osName), 1))
			for _, a := range res.Assets.Files {
				if a.Kind != generator.KindIgnition {
					continue
				}
				t.Run(strings.TrimSuffix(path.Base(a.Path), ".ign"), func(t *testing.T) {
					cfg, rep, err := ign.Parse(a.Data)
					if err != nil || len(rep.Entries) > 0 {
						t.Fatalf("config/v3_4.Parse: %v %s", err, rep)
					}
					root := ignitiontest.Sysroot(t)
					ignitiontest.MustApply(t, root, a.Data)
					for _, f := range cfg.Storage.Files {
						full := filepath.Join(root, f.Path)
						info, err := os.Stat(full)
						if err != nil {
							t.Errorf("%s not written: %v", f.Path, err)
							continue
						}
						if got := int(info.Mode().Perm()); f.Mode != nil && got != *f.Mode {
							t.Errorf("%s has mode %o, want %o", f.Path, got, *f.Mode)
						}
						if strings.HasSuffix(f.Path, ".key") && info.Mode().Perm() != 0o600 {
							t.Errorf("private key %s has mode %o", f.Path, info.Mode().Perm())
						}
						want := generator.DecodeSource(t, f.Contents.Source, f.Contents.Compression)
						if got, _ := os.ReadFile(full); !bytes.Equal(got, want) {
							t.Errorf("%s content differs from the config", f.Path)
						}
					}
					if a.Node == "" {
						// A pool machine is named at boot: no hostname, and an identity unit instead.
						if _, err := os.Stat(filepath.Join(root, "etc/hostname")); err == nil {
							t.Error("a worker pool config sets a hostname")
						}
						env, _ := os.ReadFile(filepath.Join(root, "etc/kubernetes/kubelet.env"))
						if strings.Contains(string(env), "NODE_IP") || !strings.Contains(string(env), "pool=general") {
							t.Errorf("pool kubelet.env: %s", env)
						}
						if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/kubelet.service.d/10-node-identity.conf")); err != nil {
							t.Error("the kubelet of a pool machine does not wait for its identity")
						}
					} else if hn, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(hn) != a.Node {
						t.Errorf("hostname %q, want %q", hn, a.Node)
					}
					keys, _ := filepath.Glob(filepath.Join(root, "home/core/.ssh/authorized_keys*"))
					var found bool
					for _, k := range keys {
						filepath.Walk(k, func(p string, info os.FileInfo, err error) error {
							if b, _ := os.ReadFile(p); strings.Contains(string(b), "admin@example.com") {
								found = true
							}
							return nil
						})
					}
					if !found {
						t.Error("the SSH key did not reach the core user")
					}
					presets, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system-preset/20-ignition.preset"))
					var units []string
					for _, u := range cfg.Systemd.Units {
						p := filepath.Join(root, "etc/systemd/system", u.Name)
						if u.Contents != nil {
							if _, err := os.Stat(p); err != nil {
								t.Errorf("unit %s not written", u.Name)
							}
							units = append(units, u.Name)
						}
						if u.Enabled != nil && *u.Enabled && !strings.Contains(string(presets), "enable "+u.Name) {
							t.Errorf("unit %s not enabled by preset", u.Name)
						}
					}
					verifyUnits(t, root, units)
				})
			}
		})
	}
}

// verifyUnits runs systemd-analyze verify on the units inside root; any complaint fails.
func verifyUnits(t *testing.T, root string, units []string) {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Fatal("systemd-analyze is missing: run make deps (Debian package systemd)")
	}
	args := []string{"verify", "--root=" + root, "--man=no", "--generators=no", "--recursive-errors=no"}
	for _, u := range units {
		args = append(args, "/etc/systemd/system/"+u)
	}
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
