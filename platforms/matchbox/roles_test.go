package matchbox_test

import (
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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
		if got, want := tree(t, merged), tree(t, want); got != want {
			t.Errorf("%s: the root file system from matchbox's configs differs from the whole config's:\n%s", n.name, diffLines(got, want))
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

// tree lists a root file system: each entry's path, type, mode, owner, and content or target.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "etc/.ignition-result.json" { // when Ignition ran
			return nil
		}
		st := info.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha512.Sum512(data)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// diffLines lists the lines only one of got and want has.
func diffLines(got, want string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	g, w := in(got), in(want)
	var out []string
	for l := range g {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	for l := range w {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
