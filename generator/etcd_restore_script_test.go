package generator_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/spec"
)

// TestEtcdRestoreScriptAgainstRealEtcd recovers a three-member cluster from a snapshot with its
// PKI, as etcd_restore does on new machines: the render directory rendered again with etcd_restore,
// each controller's rendered restore service run with the environment its unit gives it, the real
// etcdutl, and the snapshot served over HTTPS. The restored members start with their rendered
// configurations and hold the snapshot's keys, and no more. A snapshot that does not match its
// digest restores nothing; a member with data is left as it is; and a replacement machine booted
// later with etcd_restore still set does not restore the old snapshot but joins the running members.
func TestEtcdRestoreScriptAgainstRealEtcd(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sha256sum", "awk", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run liftoff-etcd-restore: %v", tool, err)
		}
	}
	etcdutl := testbin.MustPath(t, "etcdutl")

	// The cluster as it ran: three members holding objects, snapshotted with liftoff etcd snapshot's
	// code, then lost with everything but the render directory.
	src := etcdtest.LoopbackSpec(t, "restoreproof", 3)
	dir, res := etcdtest.Render(t, src)
	lost := etcdtest.Members(t, res.Assets, t.TempDir())
	for _, m := range lost {
		m.Boot(t)
	}
	etcd, err := etcdadmin.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cli := etcdtest.Client(t, dir, etcd.ClientURLs()...)
	etcdtest.WaitHealthy(t, cli, etcd.ClientURLs()...)
	const objects = 50
	for i := range objects {
		if _, err := cli.Put(t.Context(), fmt.Sprintf("/registry/configmaps/default/kept-%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	tlsCfg, err := etcd.TLS()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := etcdadmin.SaveSnapshot(t.Context(), tlsCfg, etcd.ClientURLs(), filepath.Join(t.TempDir(), "etcd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "/registry/configmaps/default/after-the-snapshot", "x"); err != nil {
		t.Fatal(err)
	}
	for _, m := range lost {
		m.Kill()
	}

	// The snapshot over HTTPS, from a server whose certificate the script's curl is told to trust
	// (CURL_CA_BUNDLE, curl's own setting).
	data, err := os.ReadFile(snap.Path)
	if err != nil {
		t.Fatal(err)
	}
	var downloads atomic.Int32
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/backups/etcd.db" {
			http.NotFound(w, r)
			return
		}
		downloads.Add(1)
		w.Write(data)
	}))
	defer server.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}

	// The same render directory rendered again with etcd_restore, as `liftoff render` would: the
	// same PKI, and controllers that restore the snapshot. They boot as new machines.
	c, diags := spec.Parse([]byte(withRestore(src, server.URL+"/backups/etcd.db", snap.SHA256)), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := generator.Render(full, generator.Options{Now: time.Now(), Existing: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/etcd/ca.key"} {
		if string(again.Assets.Get(p).Data) != string(res.Assets.Get(p).Data) {
			t.Fatalf("rendering again with etcd_restore changed %s", p)
		}
	}
	members := etcdtest.Members(t, again.Assets, t.TempDir())
	byName := map[string]*etcdtest.Member{}
	for _, m := range members {
		byName[m.Name] = m
	}
	c1, c2, c3 := byName["c1"], byName["c2"], byName["c3"]

	// restore runs the machine's rendered restore service, as systemd would, with the release's
	// etcdutl where this test has it.
	restore := func(m *etcdtest.Member, extra ...string) (string, error) {
		t.Helper()
		raw := again.Assets.Get("ignition/" + m.Name + ".ign").Data
		p := restorePartsOf(t, raw)
		if p.unit == "" || p.script == nil {
			t.Fatalf("%s's Ignition config has no restore unit or script", m.Name)
		}
		writeRootFile(t, m.Root, p.script.Path, generator.DecodeSource(t, p.script.Contents.Source, p.script.Contents.Compression), fs.FileMode(*p.script.Mode))
		command := strings.Fields(unitSetting(p.unit, "ExecStart"))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, m.Path(command[0]), command[1:]...)
		cmd.Env = os.Environ()
		for k, v := range unitEnvironment(t, p.unit) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "LIFTOFF_ROOT="+m.Root, "LIFTOFF_ETCDUTL="+etcdutl, "CURL_CA_BUNDLE="+bundle)
		cmd.Env = append(cmd.Env, extra...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// holds lists what a member's data directory holds.
	holds := func(m *etcdtest.Member) []string {
		t.Helper()
		entries, err := os.ReadDir(m.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	// A download that does not match the digest restores nothing and leaves nothing behind.
	wrong := strings.Repeat("0", 64)
	if out, err := restore(c1, "LIFTOFF_SNAPSHOT_SHA256="+wrong); err == nil || !strings.Contains(out, "does not match its sha256 "+wrong+": nothing restored") {
		t.Fatalf("a restore with a wrong sha256: %v\n%s", err, out)
	}
	if got := holds(c1); len(got) > 0 || downloads.Load() != 1 {
		t.Fatalf("after a mismatching download (%d downloads) the data directory holds %v", downloads.Load(), got)
	}

	// With no member answering, c1 and c2 restore the snapshot; the download is removed.
	for _, m := range []*etcdtest.Member{c1, c2} {
		out, err := restore(m)
		if err != nil || !strings.Contains(out, "restored etcd member "+m.Name+" of "+etcd.InitialCluster()) {
			t.Fatalf("restoring %s: %v\n%s", m.Name, err, out)
		}
		if got := holds(m); len(got) != 1 || got[0] != "member" {
			t.Errorf("%s's data directory holds %v after the restore, want member only", m.Name, got)
		}
		m.Boot(t)
	}
	etcdtest.WaitHealthy(t, cli, c1.ClientURL, c2.ClientURL)
	// c3 boots late, while c1 and c2 already run: they list it as one of the restored cluster's
	// members that never started, so it restores the snapshot as they did.
	if out, err := restore(c3); err != nil || !strings.Contains(out, "restored etcd member c3") {
		t.Fatalf("restoring c3 late: %v\n%s", err, out)
	}
	c3.Boot(t)
	etcdtest.WaitHealthy(t, cli, etcd.ClientURLs()...)
	if n := downloads.Load(); n != 4 {
		t.Errorf("the snapshot was downloaded %d times, want 4 (one mismatching, three restores)", n)
	}

	// Every member holds the snapshot's keys and nothing written after it; revisions move on past
	// the bump.
	for _, m := range members {
		got := countKeys(t, dir, m.ClientURL, "/registry/configmaps/default/")
		if got != objects {
			t.Errorf("%s holds %d keys after the restore, want the snapshot's %d", m.Name, got, objects)
		}
	}
	put, err := cli.Put(t.Context(), "/registry/configmaps/default/after-the-restore", "x")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision < generator.EtcdRevisionBump {
		t.Errorf("revision %d after the restore, want it past %d", put.Header.Revision, generator.EtcdRevisionBump)
	}

	// A member with data is left as it is: nothing downloaded, nothing changed.
	before, err := os.Stat(filepath.Join(c1.DataDir(), "member"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := restore(c1); err != nil || !strings.Contains(out, "holds etcd data, which is kept: nothing restored") {
		t.Errorf("restoring a member with data: %v\n%s", err, out)
	}
	if after, err := os.Stat(filepath.Join(c1.DataDir(), "member")); err != nil || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the restore touched c1's data")
	}

	// c3's machine is lost with its data and replaced while etcd_restore is still set. Before
	// `liftoff etcd replace` the running members list it as started; after, as added: either way
	// it does not restore the old snapshot, and after the replace it joins and gets their data.
	c3.Kill()
	if err := os.RemoveAll(c3.DataDir()); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(c3.DataDir(), 0o700)
	for _, standing := range []string{"started", "added"} {
		if standing == "added" {
			if _, err := etcd.Replace(t.Context(), "c3"); err != nil {
				t.Fatal(err)
			}
		}
		out, err := restore(c3)
		if err != nil || !strings.Contains(out, "list member c3 as "+standing+", so it does not restore the snapshot") {
			t.Errorf("restoring c3 on its replacement machine (%s): %v\n%s", standing, err, out)
		}
		if got := holds(c3); len(got) > 0 {
			t.Errorf("c3's replacement machine (%s) has %v in its data directory", standing, got)
		}
	}
	if n := downloads.Load(); n != 4 {
		t.Errorf("the snapshot was downloaded %d times, want still 4", n)
	}
	if out := c3.Boot(t); !strings.Contains(out, "etcd member c3 joins the running cluster") {
		t.Errorf("liftoff-etcd-join on c3's replacement machine said %q", out)
	}
	etcdtest.WaitHealthy(t, cli, etcd.ClientURLs()...)
	deadline := time.Now().Add(time.Minute)
	for countKeys(t, dir, c3.ClientURL, "/registry/configmaps/default/") != objects+1 {
		if time.Now().After(deadline) {
			t.Fatal("c3's replacement does not hold the running cluster's keys after a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countKeys counts the keys under prefix that endpoint itself holds (a serializable read).
func countKeys(t *testing.T, dir, endpoint, prefix string) int64 {
	t.Helper()
	cli := etcdtest.Client(t, dir, endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("reading from %s: %v", endpoint, err)
	}
	return resp.Count
}
