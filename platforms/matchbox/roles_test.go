package matchbox_test

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/ignitiontest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/internal/matchboxtest"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/matchbox"
)

// TestRealIgnitionMergesRoleConfigsFromMatchbox serves a bare-metal render with a real matchbox and
// boots a controller and a worker with the real Ignition binary from what matchbox serves: each
// machine's own config names its role's shared config by URL and sha512, Ignition fetches it from
// matchbox and merges it, and the machine's root file system comes out exactly as from the whole
// config liftoff renders without shared role configs (same key material). A role config changed on
// the server is refused.
func TestRealIgnitionMergesRoleConfigsFromMatchbox(t *testing.T) {
	port := matchboxtest.FreePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	r := testcluster.Render(t, testcluster.Spec("flatcar", fmt.Sprintf(`  platform "matchbox" {
    matchbox_http_endpoint = %q
    os_version = "4230.2.3"
  }`, endpoint), 1, 2, ""))
	out := filepath.Join(t.TempDir(), "out")
	if err := outdir.Write(out, r.Assets); err != nil {
		t.Fatal(err)
	}
	m := matchboxtest.Start(t, port, filepath.Join(out, matchbox.DataDir))

	// The same spec and keys rendered without a platform: every machine's config whole.
	existing, _, err := outdir.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := generator.Render(r.Cluster, generator.Options{Now: testcluster.Now, Existing: existing})
	if err != nil {
		t.Fatal(err)
	}

	roles := map[string]bool{}
	for _, n := range machines(r.Cluster) {
		if n.name != "c1" && n.name != "w1" {
			continue
		}
		own := m.Get(t, "/ignition?mac="+hexhyp(n.mac)+"&os=installed")
		cfg := testcluster.ParseIgnition(t, own)
		if len(cfg.Ignition.Config.Merge) != 1 {
			t.Fatalf("%s: the config served merges %d configs, want its role's", n.name, len(cfg.Ignition.Config.Merge))
		}
		ref := cfg.Ignition.Config.Merge[0]
		role := r.Assets.Get("ignition/" + n.name + ".ign").Role
		roles[role] = true
		// The reference is to matchbox, and pins the role config liftoff rendered.
		roleConfig := m.Get(t, strings.TrimPrefix(*ref.Source, endpoint))
		if want := r.Assets.Get("ignition/roles/" + role + ".ign").Data; string(roleConfig) != string(want) {
			t.Fatalf("%s: matchbox serves at %s another config than ignition/roles/%s.ign", n.name, *ref.Source, role)
		}
		sum := sha512.Sum512(roleConfig)
		if want := "sha512-" + hex.EncodeToString(sum[:]); ref.Verification.Hash == nil || *ref.Verification.Hash != want {
			t.Errorf("%s: the reference's hash is %v, want %s", n.name, ref.Verification.Hash, want)
		}
		if len(own) > len(roleConfig) && role == "worker" {
			t.Errorf("%s: its own config (%d bytes) is larger than the worker role's (%d bytes)", n.name, len(own), len(roleConfig))
		}

		merged := ignitiontest.Sysroot(t)
		ignitiontest.MustApply(t, merged, own)
		want := ignitiontest.Sysroot(t)
		ignitiontest.MustApply(t, want, whole.Assets.Get("ignition/"+n.name+".ign").Data)
		if diff := ignitiontest.Diff(t, merged, want); diff != "" {
			t.Errorf("%s: the root file system from matchbox's configs differs from the whole config's:\n%s", n.name, diff)
		}
	}
	if !roles["controller"] || !roles["worker"] {
		t.Fatalf("booted roles %v, want a controller and a worker", roles)
	}

	// A role config that is not the one liftoff rendered (someone's SSH key in it) is refused: the
	// machine does not boot.
	served := filepath.Join(out, matchbox.DataDir, "ignition", "test.worker.ign")
	data, err := os.ReadFile(served)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), "admin@example.com", "intruder@example.com", 1)
	if tampered == string(data) {
		t.Fatal("the worker role config has no SSH key to replace")
	}
	if err := os.WriteFile(served, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range machines(r.Cluster) {
		if n.name != "w1" {
			continue
		}
		log, err := ignitiontest.Apply(t, ignitiontest.Sysroot(t), m.Get(t, "/ignition?mac="+hexhyp(n.mac)+"&os=installed"))
		if err == nil {
			t.Fatal("Ignition applied a worker config whose role config was changed on matchbox")
		}
		if !strings.Contains(log, "hash") {
			t.Errorf("Ignition failed for another reason than the role config's hash:\n%s", log)
		}
	}
}
