package generator_test

import (
	"bytes"
	"context"
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
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/spec"
)

// seedSysroot gives a sysroot what the OS image has before Ignition runs: the account databases
// (with Flatcar's and Fedora CoreOS's core user) and the programs the rendered units start that the
// OS ships or that arrive at first boot (the kubelet and etcd fetched by liftoff-fetch).
func seedSysroot(t *testing.T, root string) {
	t.Helper()
	files := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500:Core:/home/core:/bin/bash\n",
		"etc/group":   "root:x:0:\ncore:x:500:\nsudo:x:27:core\ndocker:x:233:core\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\ncore:!::\nsudo:!::core\ndocker:!::core\n",
	}
	for p, content := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "home/core"), 0o755)
	if err := os.Chown(filepath.Join(root, "home/core"), 500, 500); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/mkdir", "opt/bin/kubelet", "opt/bin/etcd", "usr/bin/docker", "usr/bin/podman", "usr/bin/systemd-sysext"} {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

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

// newSysroot makes an empty root directory that every user can traverse, as / is: Ignition writes
// a user's SSH keys as that user. (t.TempDir's parents are private to root.)
func newSysroot(t *testing.T) string {
	t.Helper()
	root, err := os.MkdirTemp("", "liftoff-sysroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// applyIgnition runs the real Ignition binary's fetch-offline and files stages into root.
func applyIgnition(t *testing.T, ignition, root string, config []byte) {
	t.Helper()
	work := t.TempDir()
	cfg := filepath.Join(work, "config.ign")
	if err := os.WriteFile(cfg, config, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, stage := range []string{"fetch-offline", "files"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, ignition, "-platform", "file", "-stage", stage, "-root", root,
			"-config-cache", filepath.Join(work, "cache.json"), "-state-file", filepath.Join(work, "state.json"),
			"-neednet", filepath.Join(work, "neednet"), "-log-to-stdout")
		cmd.Env = append(os.Environ(), "IGNITION_CONFIG_FILE="+cfg)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("ignition %s stage: %v\n%s", stage, err, out)
		}
	}
}

// TestRealIgnitionAppliesEveryConfig applies each rendered config with the real Ignition binary
// into a sysroot, checks that every file landed with its mode and content and every unit with its
// enablement, and has systemd verify the units.
func TestRealIgnitionAppliesEveryConfig(t *testing.T) {
	ignition := testbin.MustPath(t, "ignition")
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
					root := newSysroot(t)
					seedSysroot(t, root)
					applyIgnition(t, ignition, root, a.Data)
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
