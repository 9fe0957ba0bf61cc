package provider

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// TestExampleVagrant applies examples/vagrant with the built provider as its README does: the
// configuration is formatted, the apply writes the same Vagrantfile as `liftoff render` of the
// example's cluster.hcl, a second plan is empty, the real vagrant validates the Vagrantfile, and a
// changed machine size reaches the Vagrantfile on the next apply.
func TestExampleVagrant(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "examples", "vagrant"), dir)
	w := newWorkdir(t, dir)
	if out, code := w.run("fmt", "-check", "-diff"); code != 0 {
		t.Fatalf("examples/vagrant is not formatted as terraform fmt would (exit %d):\n%s", code, out)
	}

	w.must("apply", "-auto-approve")
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("second plan is not empty (exit %d):\n%s", code, out)
	}
	vagrantDir := strings.TrimSpace(w.must("output", "-raw", "vagrant_dir"))
	if want := filepath.Join(dir, "out", "vagrant"); vagrantDir != want {
		t.Errorf("output vagrant_dir is %q, want %q", vagrantDir, want)
	}
	for _, m := range []string{"node1", "node2", "node3"} {
		cfg, err := os.ReadFile(filepath.Join(vagrantDir, "ignition", m+".ign"))
		if err != nil {
			t.Fatalf("the apply did not write %s's config where the Vagrantfile reads it: %v", m, err)
		}
		if err := butane.Check(cfg); err != nil {
			t.Errorf("out/vagrant/ignition/%s.ign is not an Ignition 3.4.0 config: %v", m, err)
		}
	}

	// main.tf and cluster.hcl describe one cluster: the CLI renders the same Vagrantfile.
	vagrantfile := readVagrantfile(t, vagrantDir)
	cliOut := filepath.Join(t.TempDir(), "assets")
	liftoff := filepath.Join(goBuild(t, "github.com/liftoff-k8s/liftoff/cmd/liftoff", "liftoff"), "liftoff")
	render := exec.CommandContext(t.Context(), liftoff, "render", "--spec", filepath.Join("..", "examples", "vagrant", "cluster.hcl"), "--out", cliOut)
	if out, err := render.CombinedOutput(); err != nil {
		t.Fatalf("liftoff render of examples/vagrant/cluster.hcl: %v\n%s", err, out)
	}
	if fromCLI := readVagrantfile(t, filepath.Join(cliOut, "vagrant")); !bytes.Equal(vagrantfile, fromCLI) {
		t.Errorf("main.tf and cluster.hcl render different Vagrantfiles.\nmain.tf:\n%s\ncluster.hcl:\n%s", vagrantfile, fromCLI)
	}

	// Vagrant's state is kept outside out/, as the README says, so that the next apply may replace out/.
	t.Setenv("VAGRANT_DOTFILE_PATH", filepath.Join(dir, ".vagrant"))
	if msg, err := testbin.VagrantValidate(t, vagrantDir); err != nil {
		t.Fatalf("vagrant validate refused the Vagrantfile the apply wrote: %v\n%s\n%s", err, msg, vagrantfile)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("plan after vagrant validate is not empty (exit %d):\n%s", code, out)
	}

	// Bigger workers: the apply rewrites the Vagrantfile, which vagrant still accepts.
	main := filepath.Join(dir, "main.tf")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "worker_memory     = 2048", "worker_memory     = 3072", 1)
	if edited == string(src) {
		t.Fatal("examples/vagrant/main.tf no longer sets worker_memory = 2048")
	}
	if err := os.WriteFile(main, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	w.must("apply", "-auto-approve")
	vagrantfile = readVagrantfile(t, vagrantDir)
	for _, m := range []string{"node2", "node3"} {
		if !lineHas(vagrantfile, "name: '"+m+"', role: 'worker'", "memory: 3072 }") {
			t.Errorf("the Vagrantfile does not give %s 3072 MiB after the apply:\n%s", m, vagrantfile)
		}
	}
	if msg, err := testbin.VagrantValidate(t, vagrantDir); err != nil {
		t.Fatalf("vagrant validate refused the Vagrantfile of the second apply: %v\n%s\n%s", err, msg, vagrantfile)
	}
}

func readVagrantfile(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Vagrantfile"))
	if err != nil {
		t.Fatalf("no Vagrantfile: %v", err)
	}
	return b
}

// lineHas reports whether a line of text contains both a and b.
func lineHas(text []byte, a, b string) bool {
	for _, line := range strings.Split(string(text), "\n") {
		if strings.Contains(line, a) && strings.Contains(line, b) {
			return true
		}
	}
	return false
}
