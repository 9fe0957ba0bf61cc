package testbin

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// VagrantValidate runs the real `vagrant validate` in dir with the libvirt provider, whose settings
// it checks because vagrant-libvirt is installed, and returns vagrant's output. Vagrant is not built
// here but located: without it on PATH the test fails, saying how to install it.
func VagrantValidate(t testing.TB, dir string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("vagrant")
	if err != nil {
		t.Fatalf("this test runs `vagrant validate`, and vagrant is not on PATH: install the Debian packages vagrant and vagrant-libvirt (make deps): %v", err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "validate")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VAGRANT_HOME="+t.TempDir(), "VAGRANT_DEFAULT_PROVIDER=libvirt", "VAGRANT_CHECKPOINT_DISABLE=1", "VAGRANT_NO_COLOR=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}
