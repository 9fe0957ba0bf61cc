package matchbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/internal/matchboxtest"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/matchbox"
	"github.com/liftoff-k8s/liftoff/spec"
)

// machine is what a test knows about a machine of the spec.
type machine struct {
	name, mac, disk string
}

// hexhyp is how iPXE's ${mac:hexhyp} spells a MAC.
func hexhyp(mac string) string { return strings.ReplaceAll(mac, ":", "-") }

// TestRealMatchboxBootsEveryMachine renders bare-metal clusters, serves the data directory with a
// real matchbox and walks every machine through its boot as iPXE and the installers would: the iPXE
// script, the kernel, initrd and arguments of its profile, the install-stage Ignition config, and
// the final config, which must be the rendered one byte for byte.
func TestRealMatchboxBootsEveryMachine(t *testing.T) {
	tests := []struct {
		name, os, settings string
		// kernel, initrd and args are the iPXE lines expected for machine w1; ENDPOINT stands for matchbox's URL.
		kernel, initrd string
		args           []string
		// flatcarInstall is the flatcar-install command line expected in w1's install stage.
		flatcarInstall string
		// asset is a file under the assets directory that the kernel URL must reach (cached assets).
		asset string
	}{
		{
			name: "flatcar", os: "flatcar",
			settings: `os_version = "4230.2.3"
    kernel_args = ["console=ttyS0,115200n8"]`,
			kernel: "https://stable.release.flatcar-linux.net/amd64-usr/4230.2.3/flatcar_production_pxe.vmlinuz",
			initrd: "https://stable.release.flatcar-linux.net/amd64-usr/4230.2.3/flatcar_production_pxe_image.cpio.gz",
			args: []string{"initrd=flatcar_production_pxe_image.cpio.gz", "flatcar.config.url=ENDPOINT/ignition?mac=${mac:hexhyp}",
				"flatcar.first_boot=yes", "liftoff.config_url=ENDPOINT/ignition?mac=${mac:hexhyp}&os=installed", "console=ttyS0,115200n8"},
			flatcarInstall: "flatcar-install -d /dev/nvme0n1 -C stable -V 4230.2.3 -i /var/tmp/liftoff.ign",
		},
		{
			name: "flatcar-cached-beta", os: "flatcar",
			settings: `os_channel = "beta"
    os_version = "4344.1.0"
    cached_assets = true
    install_disk = "/dev/vda"`,
			kernel: "ENDPOINT/assets/flatcar/amd64-usr/4344.1.0/flatcar_production_pxe.vmlinuz",
			initrd: "ENDPOINT/assets/flatcar/amd64-usr/4344.1.0/flatcar_production_pxe_image.cpio.gz",
			args: []string{"initrd=flatcar_production_pxe_image.cpio.gz", "flatcar.config.url=ENDPOINT/ignition?mac=${mac:hexhyp}",
				"flatcar.first_boot=yes", "liftoff.config_url=ENDPOINT/ignition?mac=${mac:hexhyp}&os=installed"},
			flatcarInstall: "flatcar-install -d /dev/nvme0n1 -C beta -V 4344.1.0 -b ENDPOINT/assets/flatcar/amd64-usr -i /var/tmp/liftoff.ign",
			asset:          "flatcar/amd64-usr/4344.1.0/flatcar_production_pxe.vmlinuz",
		},
		{
			name: "fcos", os: "fcos",
			settings: `os_version = "42.20250901.3.0"`,
			kernel:   "https://builds.coreos.fedoraproject.org/prod/streams/stable/builds/42.20250901.3.0/x86_64/fedora-coreos-42.20250901.3.0-live-kernel.x86_64",
			initrd:   "--name main https://builds.coreos.fedoraproject.org/prod/streams/stable/builds/42.20250901.3.0/x86_64/fedora-coreos-42.20250901.3.0-live-initramfs.x86_64.img",
			args: []string{"initrd=main",
				"coreos.live.rootfs_url=https://builds.coreos.fedoraproject.org/prod/streams/stable/builds/42.20250901.3.0/x86_64/fedora-coreos-42.20250901.3.0-live-rootfs.x86_64.img",
				"coreos.inst.install_dev=/dev/nvme0n1", "coreos.inst.ignition_url=ENDPOINT/ignition?mac=${mac:hexhyp}&os=installed"},
		},
		{
			name: "fcos-cached-testing", os: "fcos",
			settings: `os_channel = "testing"
    os_version = "41.20250130.2.0"
    cached_assets = true`,
			kernel: "ENDPOINT/assets/fedora-coreos/fedora-coreos-41.20250130.2.0-live-kernel-x86_64",
			initrd: "--name main ENDPOINT/assets/fedora-coreos/fedora-coreos-41.20250130.2.0-live-initramfs.x86_64.img",
			args: []string{"initrd=main",
				"coreos.live.rootfs_url=ENDPOINT/assets/fedora-coreos/fedora-coreos-41.20250130.2.0-live-rootfs.x86_64.img",
				"coreos.inst.install_dev=/dev/nvme0n1", "coreos.inst.ignition_url=ENDPOINT/ignition?mac=${mac:hexhyp}&os=installed"},
			asset: "fedora-coreos/fedora-coreos-41.20250130.2.0-live-kernel-x86_64",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := matchboxtest.FreePort(t)
			endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
			src := testcluster.Spec(tt.os, fmt.Sprintf(`  platform "matchbox" {
    matchbox_http_endpoint = %q
    %s
  }`, endpoint, tt.settings), 3, 2, "")
			// w1 installs to a disk of its own.
			src = strings.Replace(src, `worker "w1" {`, `worker "w1" {
    install_disk = "/dev/nvme0n1"`, 1)
			// c1's MAC is pasted as a switch prints it: matchbox still finds the machine by the
			// MAC its iPXE sends.
			if src = strings.Replace(src, `mac = "52:54:00:00:00:01"`, `mac = "5254.0000.0001"`, 1); !strings.Contains(src, "5254.0000.0001") {
				t.Fatal("the spec has no c1 MAC to respell")
			}
			r := testcluster.Render(t, src)

			out := filepath.Join(t.TempDir(), "out")
			if err := outdir.Write(out, r.Assets); err != nil {
				t.Fatal(err)
			}
			assets := t.TempDir()
			if tt.asset != "" {
				writeFile(t, filepath.Join(assets, tt.asset), "kernel image")
			}
			m := matchboxtest.Start(t, port, filepath.Join(out, matchbox.DataDir), "-assets-path", assets)

			boot := string(m.Get(t, "/boot.ipxe"))
			if !strings.Contains(boot, "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}") {
				t.Fatalf("/boot.ipxe does not chain to /ipxe with the MAC:\n%s", boot)
			}

			expand := func(s string) string { return strings.ReplaceAll(s, "ENDPOINT", endpoint) }
			installProfiles := map[string]string{} // by disk
			for _, n := range machines(r.Cluster) {
				// iPXE, after /boot.ipxe, asks for the machine's script with its variables expanded.
				q := url.Values{"uuid": {"0f3c1a2e-0000-4000-8000-000000000001"}, "mac": {hexhyp(n.mac)}, "domain": {""}, "hostname": {""}, "serial": {""}, "arch": {"x86_64"}}
				script := string(m.Get(t, "/ipxe?"+q.Encode()))
				kernel, initrds, args := parseIPXE(t, script)
				if n.name == "w1" {
					if kernel != expand(tt.kernel) {
						t.Errorf("kernel:\n got %s\nwant %s", kernel, expand(tt.kernel))
					}
					if len(initrds) != 1 || initrds[0] != expand(tt.initrd) {
						t.Errorf("initrd:\n got %q\nwant %q", initrds, expand(tt.initrd))
					}
					var want []string
					for _, a := range tt.args {
						want = append(want, expand(a))
					}
					if strings.Join(args, " ") != strings.Join(want, " ") {
						t.Errorf("kernel arguments:\n got %q\nwant %q", args, want)
					}
				}
				if tt.asset != "" {
					if body := m.Get(t, strings.TrimPrefix(kernel, endpoint)); string(body) != "kernel image" {
						t.Errorf("cached kernel %s served %q", kernel, body)
					}
				}

				rendered := r.Assets.Get("ignition/" + n.name + ".ign")
				var finalURL string
				switch tt.os {
				case spec.OSFlatcar:
					installURL := ipxeExpand(argValue(t, args, "flatcar.config.url"), n.mac)
					installCfg := m.Get(t, strings.TrimPrefix(installURL, endpoint))
					// Machines that install to the same disk share one install profile and config.
					var g struct{ Profile string }
					if err := json.Unmarshal(readFile(t, filepath.Join(out, "matchbox/groups/test-"+n.name+"-install.json")), &g); err != nil {
						t.Fatal(err)
					}
					if was, ok := installProfiles[n.disk]; ok && was != g.Profile {
						t.Errorf("%s installs to %s with profile %s, another machine with %s", n.name, n.disk, g.Profile, was)
					}
					installProfiles[n.disk] = g.Profile
					wantInstall := readFile(t, filepath.Join(out, "matchbox/ignition/"+g.Profile+".ign"))
					if !bytes.Equal(installCfg, wantInstall) {
						t.Fatalf("%s: install config served differs from matchbox/ignition/%s.ign:\n got %s\nwant %s", n.name, g.Profile, installCfg, wantInstall)
					}
					// The install script runs with the kernel command line iPXE gave it.
					var cmdline []string
					for _, a := range args {
						cmdline = append(cmdline, ipxeExpandAll(a, n.mac))
					}
					ran := runInstallScript(t, installScript(t, installCfg), strings.Join(cmdline, " "))
					install := ran["flatcar-install"]
					wantDisk := "-d " + n.disk + " "
					if !strings.Contains(install, wantDisk) {
						t.Errorf("%s: %q does not install to %s", n.name, install, n.disk)
					}
					if n.name == "w1" && "flatcar-install "+install != expand(tt.flatcarInstall) {
						t.Errorf("install command:\n got flatcar-install %s\nwant %s", install, expand(tt.flatcarInstall))
					}
					fields := strings.Fields(ran["curl"])
					if len(fields) == 0 {
						t.Fatalf("%s: install script fetches no final config", n.name)
					}
					finalURL = fields[len(fields)-1]
					if want := endpoint + "/ignition?mac=" + hexhyp(n.mac) + "&os=installed"; finalURL != want {
						t.Errorf("%s: install stage fetches %s, want %s", n.name, finalURL, want)
					}
					if ran["systemctl"] != "reboot" {
						t.Errorf("%s: the install script does not reboot (systemctl %q)", n.name, ran["systemctl"])
					}
				case spec.OSFCOS:
					finalURL = ipxeExpand(argValue(t, args, "coreos.inst.ignition_url"), n.mac)
					if got := argValue(t, args, "coreos.inst.install_dev"); got != n.disk {
						t.Errorf("%s: installs to %s, want %s", n.name, got, n.disk)
					}
					// The live system needs no config of its own: the install profile has none.
					if status := m.Status(t, "/ignition?mac="+hexhyp(n.mac)); status != http.StatusNotFound {
						t.Errorf("%s: install stage serves an Ignition config (status %d); the live image should fetch only the final one", n.name, status)
					}
				}
				final := m.Get(t, strings.TrimPrefix(finalURL, endpoint))
				if !bytes.Equal(final, rendered.Data) {
					t.Fatalf("%s: final config served at %s differs from ignition/%s.ign (%d bytes, want %d)", n.name, finalURL, n.name, len(final), len(rendered.Data))
				}
			}

			// A machine the spec does not list gets nothing.
			if status := m.Status(t, "/ipxe?mac=52-54-00-ff-ff-ff"); status != http.StatusNotFound {
				t.Errorf("an unknown MAC got status %d from /ipxe, want 404", status)
			}
			if status := m.Status(t, "/ignition?mac=52-54-00-ff-ff-ff&os=installed"); status != http.StatusNotFound {
				t.Errorf("an unknown MAC got status %d from /ignition, want 404", status)
			}
		})
	}
}

func machines(c *spec.Cluster) []machine {
	var out []machine
	for _, n := range c.Machines() {
		disk := "/dev/sda"
		if c.Platform.Settings.(*matchbox.Settings).InstallDisk != "" {
			disk = c.Platform.Settings.(*matchbox.Settings).InstallDisk
		}
		if n.InstallDisk != "" {
			disk = n.InstallDisk
		}
		out = append(out, machine{name: n.Name, mac: n.MAC, disk: disk})
	}
	return out
}

// parseIPXE reads matchbox's iPXE script: "#!ipxe", "kernel URL ARGS...", "initrd ..." lines, "boot".
func parseIPXE(t *testing.T, script string) (kernel string, initrds, args []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(script), "\n")
	if len(lines) < 3 || lines[0] != "#!ipxe" || lines[len(lines)-1] != "boot" || !strings.HasPrefix(lines[1], "kernel ") {
		t.Fatalf("not an iPXE boot script:\n%s", script)
	}
	fields := strings.Fields(strings.TrimPrefix(lines[1], "kernel "))
	for _, l := range lines[2 : len(lines)-1] {
		initrd, ok := strings.CutPrefix(l, "initrd ")
		if !ok {
			t.Fatalf("unexpected line %q in:\n%s", l, script)
		}
		initrds = append(initrds, initrd)
	}
	return fields[0], initrds, fields[1:]
}

func argValue(t *testing.T, args []string, name string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in kernel arguments %q", name, args)
	return ""
}

// ipxeExpand does what iPXE does to ${mac:hexhyp} before it boots the kernel.
func ipxeExpand(s, mac string) string {
	if !strings.Contains(s, "${mac:hexhyp}") {
		panic("no iPXE MAC variable in " + s)
	}
	return strings.ReplaceAll(s, "${mac:hexhyp}", hexhyp(mac))
}

// ipxeExpandAll is ipxeExpand for text that may hold no iPXE variable.
func ipxeExpandAll(s, mac string) string {
	return strings.ReplaceAll(s, "${mac:hexhyp}", hexhyp(mac))
}

// runInstallScript runs the install stage's script with bash, as the PXE-booted machine would, on
// the kernel command line cmdline, with curl, flatcar-install, udevadm and systemctl standing in
// for the real ones: it returns the arguments each was run with.
func runInstallScript(t *testing.T, script, cmdline string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cmdline"), cmdline+"\n")
	if !strings.Contains(script, "/proc/cmdline") {
		t.Fatalf("the install script does not read the kernel command line:\n%s", script)
	}
	writeFile(t, filepath.Join(dir, "install"), strings.ReplaceAll(script, "/proc/cmdline", filepath.Join(dir, "cmdline")))
	bin := filepath.Join(dir, "bin")
	for _, cmd := range []string{"curl", "flatcar-install", "udevadm", "systemctl"} {
		writeFile(t, filepath.Join(bin, cmd), "#!/bin/bash\necho \"$*\" > \""+filepath.Join(dir, cmd+".args")+"\"\n")
		if err := os.Chmod(filepath.Join(bin, cmd), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", filepath.Join(dir, "install"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install script: %v\n%s", err, out)
	}
	ran := map[string]string{}
	for _, c := range []string{"curl", "flatcar-install", "udevadm", "systemctl"} {
		if data, err := os.ReadFile(filepath.Join(dir, c+".args")); err == nil {
			ran[c] = strings.TrimSpace(string(data))
		}
	}
	return ran
}

// installScript returns the install script that a Flatcar install-stage config places.
func installScript(t *testing.T, raw []byte) string {
	t.Helper()
	return testcluster.FileText(t, testcluster.ParseIgnition(t, raw), "/opt/liftoff/install")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
