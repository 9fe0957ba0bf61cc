package libvirt_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/libvirt"
	"github.com/liftoff-k8s/liftoff/spec"
)

// tool is a program the test runs, from the Debian packages `make deps` installs.
func tool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed: run `make deps` (Debian package %s)", name, pkg)
	}
}

// TestCreateScriptOnRealLibvirt renders Flatcar and Fedora CoreOS clusters and runs the rendered
// create.sh with the real qemu-img and the real virsh on libvirt's test driver, which parses and
// validates the network and every domain against libvirt's schema as a libvirt host does: the
// network, every domain defined and started, every disk an overlay of the image, every machine's
// Ignition config in the pool, readable by its owner only, and the one fw_cfg names.
func TestCreateScriptOnRealLibvirt(t *testing.T) {
	tool(t, "virsh", "libvirt-clients")
	tool(t, "qemu-img", "qemu-utils")
	for _, os_ := range []string{spec.OSFlatcar, spec.OSFCOS} {
		t.Run(os_, func(t *testing.T) {
			t.Parallel()
			host := t.TempDir()
			image := filepath.Join(host, "os.qcow2")
			run(t, "", nil, "qemu-img", "create", "-q", "-f", "qcow2", image, "1G")
			pool := filepath.Join(host, "pool")
			r := testcluster.Render(t, testcluster.Spec(os_, `platform "libvirt" {
    image = "`+image+`"
    pool_dir = "`+pool+`"
    worker_memory = 3072
  }`, 3, 2, `host_cidrs = ["10.0.0.0/16"]`))
			out := filepath.Join(t.TempDir(), "out")
			if err := outdir.Write(out, r.Assets); err != nil {
				t.Fatal(err)
			}
			said := run(t, out, []string{"LIBVIRT_DEFAULT_URI=test:///default"}, filepath.Join(out, libvirt.ScriptPath))
			for _, want := range []string{"Network test defined", "Network test started"} {
				if !strings.Contains(said, want) {
					t.Errorf("create.sh did not say %q:\n%s", want, said)
				}
			}
			fwCfg := "opt/org.flatcar-linux/config"
			if os_ == spec.OSFCOS {
				fwCfg = "opt/com.coreos/config"
			}
			for _, n := range r.Cluster.Machines() {
				name := "test-" + n.Name
				for _, want := range []string{"Domain '" + name + "' defined from domains/" + n.Name + ".xml", "Domain '" + name + "' started"} {
					if !strings.Contains(said, want) {
						t.Errorf("create.sh did not say %q:\n%s", want, said)
					}
				}
				var info struct {
					BackingFilename string `json:"backing-filename"`
					VirtualSize     int64  `json:"virtual-size"`
				}
				if err := json.Unmarshal([]byte(run(t, "", nil, "qemu-img", "info", "--output", "json", filepath.Join(pool, name+".qcow2"))), &info); err != nil {
					t.Fatal(err)
				}
				if info.BackingFilename != image || info.VirtualSize != 20<<30 {
					t.Errorf("%s's disk: backing file %q, %d bytes; want an overlay of %s of 20 GiB", n.Name, info.BackingFilename, info.VirtualSize, image)
				}
				ign := filepath.Join(pool, name+".ign")
				fi, err := os.Stat(ign)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(ign)
				if fi.Mode().Perm() != 0o600 || string(got) != string(r.Assets.Get("ignition/"+n.Name+".ign").Data) {
					t.Errorf("%s: %s has mode %o and is not the machine's Ignition config", n.Name, ign, fi.Mode().Perm())
				}
				dom := string(r.Assets.Get("libvirt/domains/" + n.Name + ".xml").Data)
				if !strings.Contains(dom, `<entry name="`+fwCfg+`" file="`+ign+`">`) || !strings.Contains(dom, `<mac address="`+n.MAC+`">`) {
					t.Errorf("%s's domain does not give the OS its config through fw_cfg or lacks its MAC:\n%s", n.Name, dom)
				}
				if n.Role == spec.RoleWorker && !strings.Contains(dom, `<memory unit="MiB">3072</memory>`) {
					t.Errorf("%s's domain does not have worker_memory:\n%s", n.Name, dom)
				}
			}
			net := string(r.Assets.Get(libvirt.NetworkPath).Data)
			if !strings.Contains(net, `<ip address="10.0.0.1" prefix="16">`) || !strings.Contains(net, `<host mac="52:54:00:01:00:00" name="w1" ip="10.0.1.1">`) {
				t.Errorf("network:\n%s", net)
			}

			// Run again, all of it exists on a real host: with libvirt's test driver nothing
			// persists, so only the disks and configs are left alone, and nothing else breaks.
			run(t, out, []string{"LIBVIRT_DEFAULT_URI=test:///default"}, filepath.Join(out, libvirt.ScriptPath))

			// libvirt refuses a domain that its schema does not allow, so the check can fail.
			broken := strings.Replace(string(r.Assets.Get("libvirt/domains/c1.xml").Data), "<vcpu>", "<vcpus>", 1)
			broken = strings.Replace(broken, "</vcpu>", "</vcpus>", 1)
			bad := filepath.Join(t.TempDir(), "bad.xml")
			if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("virsh", "-c", "test:///default", "define", "--validate", bad).CombinedOutput(); err == nil {
				t.Errorf("libvirt accepted a domain with an element its schema lacks:\n%s", out)
			}
		})
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The spec names the field of every mistake.
func TestValidation(t *testing.T) {
	for _, tt := range []struct {
		name, block, extra, want string
	}{
		{"relative image", `platform "libvirt" {
    image = "images/flatcar.img"
  }`, `host_cidrs = ["10.0.0.0/16"]`, "platform.libvirt.image"},
		{"no host CIDRs", `platform "libvirt" {
    image = "/var/lib/libvirt/images/flatcar.img"
  }`, "", "cluster.host_cidrs"},
		{"machine outside the network", `platform "libvirt" {
    image = "/var/lib/libvirt/images/flatcar.img"
  }`, `host_cidrs = ["10.0.1.0/24"]`, "controller.c1.ip"},
		{"machine on the host's address", `platform "libvirt" {
    image = "/var/lib/libvirt/images/flatcar.img"
  }`, `host_cidrs = ["10.0.0.10/31"]`, "Address of the host"},
		{"small disk", `platform "libvirt" {
    image = "/var/lib/libvirt/images/flatcar.img"
    disk_size = 2
  }`, `host_cidrs = ["10.0.0.0/16"]`, "platform.libvirt.disk_size"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := testcluster.Problems(t, testcluster.Spec(spec.OSFlatcar, tt.block, 1, 1, tt.extra))
			if !strings.Contains(got, tt.want) {
				t.Errorf("problems do not name %s:\n%s", tt.want, got)
			}
		})
	}
}
