package harness_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"

	"github.com/liftoff-k8s/liftoff/harness"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// TestKubeletRefusesWithoutKernelSettings shows why the render sets the kernel settings of
// protectKernelDefaults: a one-controller cluster whose machine gets the rendered kubelet
// configuration (protectKernelDefaults: true) but a sysctl.d file without those settings is refused
// by the real kubelet, which names the setting.
func TestKubeletRefusesWithoutKernelSettings(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	renderTestClusterOf(t, out, func(src string) string {
		// One controller, no workers.
		var keep []string
		skip := false
		for _, l := range strings.Split(src, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), `controller "controller-2"`) || strings.HasPrefix(strings.TrimSpace(l), `controller "controller-3"`) ||
				strings.HasPrefix(strings.TrimSpace(l), `worker "`) {
				skip = true
			}
			if !skip {
				keep = append(keep, l)
			}
			if skip && strings.TrimSpace(l) == "}" {
				skip = false
			}
		}
		return strings.Join(keep, "\n")
	})

	// Take the kernel settings out of the machine's sysctl.d file, as a render without them would,
	// and give kernel.panic the kernel's own default, which such a machine holds: the harness
	// applies it host-wide while no other cluster runs, and puts the host's value back after.
	assets, err := outdir.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	a := assets.Get("ignition/controller-1.ign")
	cfg, _, err := ign.Parse(a.Data)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, f := range cfg.Storage.Files {
		if f.Path != "/etc/sysctl.d/liftoff-kubernetes.conf" {
			continue
		}
		found = true
		var kept []string
		for _, l := range strings.Split(ignitionFileText(t, f.Contents.Source, f.Contents.Compression), "\n") {
			if strings.HasPrefix(l, "net.") || strings.HasPrefix(l, "fs.") {
				kept = append(kept, l)
			}
		}
		kept = append(kept, "kernel.panic = 0")
		src := dataurl.EncodeBytes([]byte(strings.Join(kept, "\n") + "\n"))
		cfg.Storage.Files[i].Contents.Source = &src
		cfg.Storage.Files[i].Contents.Compression = nil
	}
	if !found {
		t.Fatal("the controller's Ignition config has no /etc/sysctl.d/liftoff-kubernetes.conf")
	}
	if a.Data, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := outdir.Write(out, assets); err != nil {
		t.Fatal(err)
	}

	c, err := harness.Boot(t.Context(), harness.Options{Dir: out, Work: filepath.Join(dir, "work"), Logf: t.Logf})
	t.Cleanup(func() {
		if c != nil {
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(c.Machine("controller-1").Root, "var/log/liftoff-harness/kubelet.service.log")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for {
		data, _ := os.ReadFile(log)
		if strings.Contains(string(data), "invalid kernel flag") {
			for _, l := range strings.Split(string(data), "\n") {
				if strings.Contains(l, "invalid kernel flag") {
					t.Logf("the kubelet refused: %s", l)
					break
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			// What the host held by then: another writer of these settings shows here.
			var held []string
			for _, k := range []string{"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "vm/panic_on_oom"} {
				v, _ := os.ReadFile("/proc/sys/" + k)
				held = append(held, k+"="+strings.TrimSpace(string(v)))
			}
			t.Fatalf("the kubelet did not refuse to start without the kernel settings (the host holds %s); its log:\n%s",
				strings.Join(held, " "), lastLines(string(data), 30))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ignitionFileText is the content of a file an Ignition config gives inline.
func ignitionFileText(t testing.TB, source *string, compression *string) string {
	t.Helper()
	if source == nil {
		t.Fatal("the file has no contents")
	}
	u, err := dataurl.DecodeString(*source)
	if err != nil {
		t.Fatal(err)
	}
	data := u.Data
	if compression != nil && *compression == "gzip" {
		data = gunzip(t, data)
	}
	return string(data)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
