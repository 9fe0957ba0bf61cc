package vagrant_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/vagrant"
	"github.com/liftoff-k8s/liftoff/spec"
)

// TestVagrantValidatesRenderedVagrantfile renders Flatcar and Fedora CoreOS clusters, checks that
// the real vagrant accepts their Vagrantfiles (and refuses one with a setting libvirt does not have,
// so the check can fail), and that every machine's config gives its private interface its address.
func TestVagrantValidatesRenderedVagrantfile(t *testing.T) {
	tests := []struct {
		os, block, fwCfg, netFile, netLine string
	}{
		{spec.OSFlatcar, `platform "vagrant" {
    box = "flatcar-stable"
    box_url = "https://stable.release.flatcar-linux.net/amd64-usr/current/flatcar_production_vagrant.json"
    controller_cpus = 4
    worker_memory = 3072
  }`, "name=opt/org.flatcar-linux/config,file=", "/etc/systemd/network/10-liftoff-private.network", "MACAddress=52:54:00:01:00:00"},
		{spec.OSFCOS, `platform "vagrant" {
    box_version = "42.20250901.3.0"
  }`, "name=opt/com.coreos/config,file=", "/etc/NetworkManager/system-connections/liftoff-private.nmconnection", "mac-address=52:54:00:01:00:00"},
	}
	for _, tt := range tests {
		t.Run(tt.os, func(t *testing.T) {
			t.Parallel()
			r := testcluster.Render(t, testcluster.Spec(tt.os, tt.block, 3, 2, `host_cidrs = ["10.0.0.0/16"]`))
			out := filepath.Join(t.TempDir(), "out")
			if err := outdir.Write(out, r.Assets); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(out, vagrant.Dir)
			if msg, err := testbin.VagrantValidate(t, dir); err != nil {
				t.Fatalf("vagrant validate refused the rendered Vagrantfile: %v\n%s\n%s", err, msg, readFile(t, filepath.Join(dir, "Vagrantfile")))
			}

			vf := string(readFile(t, filepath.Join(dir, "Vagrantfile")))
			for _, want := range []string{
				"{ name: 'c1', role: 'controller', ip: '10.0.0.11', netmask: '255.255.0.0', mac: '52:54:00:00:00:01', cpus: ",
				"{ name: 'w1', role: 'worker', ip: '10.0.1.1', netmask: '255.255.0.0', mac: '52:54:00:01:00:00', cpus: 2, memory: ",
				tt.fwCfg,
			} {
				if !strings.Contains(vf, want) {
					t.Errorf("Vagrantfile lacks %q:\n%s", want, vf)
				}
			}
			if tt.os == spec.OSFlatcar && (!strings.Contains(vf, "cpus: 4, memory: 4096 }") || !strings.Contains(vf, "cpus: 2, memory: 3072 }") ||
				!strings.Contains(vf, "config.vm.box = 'flatcar-stable'") || !strings.Contains(vf, "config.vm.box_url = 'https://stable.release.flatcar-linux.net/")) {
				t.Errorf("Vagrantfile does not carry the platform block's box and sizes:\n%s", vf)
			}
			if tt.os == spec.OSFCOS && (!strings.Contains(vf, "config.vm.box = 'fedora-coreos-stable'") || !strings.Contains(vf, "config.vm.box_version = '42.20250901.3.0'")) {
				t.Errorf("Vagrantfile does not boot the Fedora CoreOS box:\n%s", vf)
			}

			// w1's config is the one liftoff indexes for it, and the generator's alone plus its
			// private network.
			raw := readFile(t, filepath.Join(dir, "ignition", "w1.ign"))
			if !bytes.Equal(raw, r.Assets.Get("ignition/w1.ign").Data) {
				t.Error("w1's Vagrant config is not its config in ignition/")
			}
			cfg := testcluster.ParseIgnition(t, raw)
			plain := testcluster.ParseIgnition(t, r.Plain(t).Get("ignition/w1.ign").Data)
			if len(cfg.Storage.Files) != len(plain.Storage.Files)+1 {
				t.Errorf("w1's Vagrant config has %d files, without the platform %d: want exactly the network file more", len(cfg.Storage.Files), len(plain.Storage.Files))
			}
			text := testcluster.FileText(t, cfg, tt.netFile)
			for _, want := range []string{tt.netLine, "10.0.1.1/16"} {
				if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) {
					t.Errorf("%s lacks %q:\n%s", tt.netFile, want, text)
				}
			}

			// vagrant validate does check the libvirt settings: a misspelt one fails.
			broken := strings.Replace(vf, "lv.memory =", "lv.memroy =", 1)
			if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			if msg, err := testbin.VagrantValidate(t, dir); err == nil || !strings.Contains(msg, "memroy") {
				t.Errorf("vagrant validate accepted a Vagrantfile with lv.memroy (%v):\n%s", err, msg)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVagrantExample renders examples/vagrant/cluster.hcl and has the real vagrant validate it.
func TestVagrantExample(t *testing.T) {
	r := testcluster.Render(t, string(readFile(t, "../../examples/vagrant/cluster.hcl")))
	out := filepath.Join(t.TempDir(), "out")
	if err := outdir.Write(out, r.Assets); err != nil {
		t.Fatal(err)
	}
	if msg, err := testbin.VagrantValidate(t, filepath.Join(out, vagrant.Dir)); err != nil {
		t.Fatalf("vagrant validate refused examples/vagrant's Vagrantfile: %v\n%s", err, msg)
	}
	if n := len(r.Files(vagrant.KindIgnition)); n != 3 {
		t.Errorf("%d Vagrant configs, want one per machine (3)", n)
	}
}
