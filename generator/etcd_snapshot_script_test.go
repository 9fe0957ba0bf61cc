package generator_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// TestEtcdSnapshotScriptAgainstRealEtcd runs the rendered snapshot service's command, with the
// environment its unit gives it, against a real etcd member started from the rendered configuration
// and certificates, with the real etcdctl and etcdutl: run keep+2 times it leaves the newest keep
// snapshots, each with its digest, private, and the newest restores and holds the last write. A
// failing run deletes nothing.
func TestEtcdSnapshotScriptAgainstRealEtcd(t *testing.T) {
	for _, tool := range []string{"bash", "sha256sum", "sed", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run liftoff-etcd-snapshot: %v", tool, err)
		}
	}
	etcdctl, etcdutl := testbin.MustPath(t, "etcdctl"), testbin.MustPath(t, "etcdutl")
	const keep = 2
	src := strings.Replace(etcdtest.LoopbackSpec(t, "snapproof", 1), "\n  controller ",
		fmt.Sprintf("\n  etcd_snapshots { keep = %d }\n  controller ", keep), 1)
	dir, res := etcdtest.Render(t, src)
	members := etcdtest.Members(t, res.Assets, t.TempDir())
	m := members[0]
	m.Start(t, generator.HostEtcdConfig)
	cli := etcdtest.Client(t, dir, m.ClientURL)
	etcdtest.WaitHealthy(t, cli, m.ClientURL)

	// The controller's client certificate and the script, where Ignition puts them.
	raw := res.Assets.Get("ignition/" + m.Name + ".ign").Data
	cfg, _, err := ign.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Storage.Files {
		switch f.Path {
		case generator.HostEtcdSnapshotScript, path.Join(generator.HostPKIDir, generator.EtcdCACert),
			path.Join(generator.HostPKIDir, generator.APIServerEtcdCert), path.Join(generator.HostPKIDir, generator.APIServerEtcdKey):
			writeRootFile(t, m.Root, f.Path, generator.DecodeSource(t, f.Contents.Source, f.Contents.Compression), fs.FileMode(*f.Mode))
		}
	}
	// The service's command and environment as rendered, with the release's tools where this test has them.
	service := snapshotPartsOf(t, raw).units[snapshotService]
	command := strings.Fields(unitSetting(service, "ExecStart"))
	env := unitEnvironment(t, service)
	env["LIFTOFF_ETCDCTL"], env["LIFTOFF_ETCDUTL"], env["LIFTOFF_ROOT"] = etcdctl, etcdutl, m.Root
	run := func(extra ...string) (string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, m.Path(command[0]), command[1:]...)
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	// savedBy is the names of the snapshots a run says it saved.
	savedBy := func(out string) []string {
		var names []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "liftoff-etcd-snapshot: saved "); ok {
				names = append(names, filepath.Base(p))
			}
		}
		return names
	}
	// Snapshots are named to the second.
	nextSecond := func() {
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	}

	snapshots := m.Path(generator.HostEtcdSnapshotDir)
	var saved []string
	var lastRevision int64
	for i := range keep + 2 {
		put, err := cli.Put(t.Context(), "/liftoff/snapshot-proof", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		lastRevision = put.Header.Revision
		out, err := run()
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i+1, err, out)
		}
		saved = append(saved, savedBy(out)...)
		nextSecond()
	}
	if len(saved) != keep+2 {
		t.Fatalf("the script said it saved %v", saved)
	}
	nameRE := regexp.MustCompile(`^snapproof-c1-\d{8}T\d{6}Z\.db$`)
	for _, n := range saved {
		if !nameRE.MatchString(n) {
			t.Errorf("snapshot name %s is not CLUSTER-MEMBER-TIMESTAMP.db", n)
		}
	}

	// checkKept requires exactly the newest keep snapshots, each private with its digest.
	checkKept := func(t *testing.T) {
		t.Helper()
		if info, err := os.Stat(snapshots); err != nil || info.Mode().Perm() != 0o700 {
			t.Fatalf("snapshot directory: %v %v, want mode 0700", info.Mode(), err)
		}
		entries, err := os.ReadDir(snapshots)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		var want []string
		for _, n := range saved[len(saved)-keep:] {
			want = append(want, n, n+".sha256")
		}
		if !slices.Equal(names, want) {
			t.Fatalf("the snapshot directory holds %v, want %v", names, want)
		}
		for _, n := range names {
			info, _ := os.Stat(filepath.Join(snapshots, n))
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %o, want 0600", n, info.Mode().Perm())
			}
			if !strings.HasSuffix(n, ".db") {
				continue
			}
			data, _ := os.ReadFile(filepath.Join(snapshots, n))
			digest, _ := os.ReadFile(filepath.Join(snapshots, n+".sha256"))
			sum := sha256.Sum256(data)
			if want := hex.EncodeToString(sum[:]) + "  " + n + "\n"; string(digest) != want {
				t.Errorf("%s.sha256 holds %q, want %q", n, digest, want)
			}
		}
		// sha256sum checks them as an operator would.
		check := exec.Command("sha256sum", "--check", "--strict", saved[len(saved)-1]+".sha256")
		check.Dir = snapshots
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("sha256sum --check: %v\n%s", err, out)
		}
	}
	checkKept(t)

	// The newest snapshot is the last write's, and etcdutl restores it.
	newest := filepath.Join(snapshots, saved[len(saved)-1])
	out, err := exec.Command(etcdutl, "snapshot", "status", newest, "--write-out=json").CombinedOutput()
	if err != nil {
		t.Fatalf("etcdutl snapshot status: %v\n%s", err, out)
	}
	var status struct{ Revision int64 }
	if err := json.Unmarshal(out[strings.IndexByte(string(out), '{'):], &status); err != nil || status.Revision != lastRevision {
		t.Errorf("the newest snapshot is at revision %d (%v), want the last write's %d:\n%s", status.Revision, err, lastRevision, out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := exec.Command(etcdutl, "snapshot", "restore", newest, "--data-dir", restored).CombinedOutput(); err != nil {
		t.Fatalf("etcdutl snapshot restore %s: %v\n%s", newest, err, out)
	}
	if _, err := os.Stat(filepath.Join(restored, "member", "snap", "db")); err != nil {
		t.Errorf("the restored data directory has no database: %v", err)
	}

	// A run that cannot take a snapshot, or takes one etcdutl refuses, fails, saying why, and keeps
	// every snapshot there is.
	nextSecond()
	for _, f := range []struct{ env, says string }{
		{"LIFTOFF_ETCD_CERT=/nonexistent.crt", "etcdctl could not take a snapshot of member c1"},
		{"LIFTOFF_ETCDUTL=false", "is not a valid etcd snapshot"},
	} {
		if out, err := run(f.env); err == nil || !strings.Contains(out, f.says) {
			t.Errorf("a run with %s: %v\n%s", f.env, err, out)
		}
		checkKept(t)
	}
	// Without etcdutl a snapshot is kept unchecked, and the run says so.
	unchecked, err := run("LIFTOFF_ETCDUTL=/nonexistent/etcdutl")
	if err != nil || !strings.Contains(unchecked, "etcdutl is not installed") {
		t.Errorf("a run without etcdutl: %v\n%s", err, unchecked)
	}
	saved = append(saved, savedBy(unchecked)...)
	checkKept(t)
}
