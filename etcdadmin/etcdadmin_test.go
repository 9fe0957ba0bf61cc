package etcdadmin_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// cluster is a rendered cluster whose controllers' etcd members run here, each booted as its
// etcd unit boots it.
type cluster struct {
	dir     string
	etcd    *etcdadmin.Cluster
	members []*etcdtest.Member
	cli     *clientv3.Client
}

func startCluster(t *testing.T, controllers int) *cluster {
	t.Helper()
	dir, res := etcdtest.Render(t, etcdtest.LoopbackSpec(t, "etcdadmin", controllers))
	c := &cluster{dir: dir, members: etcdtest.Members(t, res.Assets, t.TempDir())}
	for _, m := range c.members {
		if out := m.Boot(t); out != "" {
			t.Errorf("%s: liftoff-etcd-join said %q when forming a new cluster", m.Name, out)
		}
		// A new cluster forms from the rendered configuration as it is.
		rendered, _ := os.ReadFile(m.Path(generator.HostEtcdConfig))
		start, _ := os.ReadFile(m.Path(generator.HostEtcdStartConfig))
		if !bytes.Equal(rendered, start) {
			t.Fatalf("%s: liftoff-etcd-join changed the configuration of a new member:\n%s", m.Name, start)
		}
	}
	var err error
	if c.etcd, err = etcdadmin.Open(dir); err != nil {
		t.Fatal(err)
	}
	c.cli = etcdtest.Client(t, dir, c.etcd.ClientURLs()...)
	etcdtest.WaitHealthy(t, c.cli, c.etcd.ClientURLs()...)
	return c
}

func (c *cluster) member(name string) *etcdtest.Member {
	for _, m := range c.members {
		if m.Name == name {
			return m
		}
	}
	panic("no member " + name)
}

// putObjects writes n Kubernetes-like objects of about size bytes in transactions of 100 writes.
func putObjects(t testing.TB, cli *clientv3.Client, n, size int) {
	t.Helper()
	value := strings.Repeat("x", size)
	for i := 0; i < n; i += 100 {
		var ops []clientv3.Op
		for j := i; j < min(i+100, n); j++ {
			ops = append(ops, clientv3.OpPut(objectKey(j), value))
		}
		if _, err := cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func objectKey(i int) string {
	resources := []string{"pods", "configmaps", "secrets", "services", "events"}
	return fmt.Sprintf("/registry/%s/namespace-%d/object-%d", resources[i%len(resources)], i%17, i)
}

// countObjects counts the keys under /registry/ that endpoint itself holds (a serializable read).
func countObjects(t *testing.T, dir, endpoint string) int64 {
	t.Helper()
	cli := etcdtest.Client(t, dir, endpoint)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/registry/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil {
		t.Fatalf("reading from %s: %v", endpoint, err)
	}
	return resp.Count
}

func saveSnapshot(t *testing.T, c *cluster, endpoints []string) *etcdadmin.Snapshot {
	t.Helper()
	tlsCfg, err := c.etcd.TLS()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := etcdadmin.SaveSnapshot(t.Context(), tlsCfg, endpoints, filepath.Join(t.TempDir(), "etcd.db"))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestSnapshotRestoredByEtcdutl saves a snapshot from a three-member cluster with one member down,
// from the member that answers, and checks the files and that the official etcdutl restores it
// into a data directory a real etcd starts on with every key.
func TestSnapshotRestoredByEtcdutl(t *testing.T) {
	c := startCluster(t, 3)
	putObjects(t, c.cli, 500, 1024)
	c.member("c1").Kill()

	snap := saveSnapshot(t, c, c.etcd.ClientURLs())
	if snap.Endpoint == c.member("c1").ClientURL {
		t.Errorf("snapshot taken from %s, which is down", snap.Endpoint)
	}
	if snap.Keys < 500 || snap.Revision < 2 || snap.Size < 500*1024 || len(snap.SHA256) != 64 {
		t.Errorf("snapshot %+v: want at least 500 keys, a revision, 500 KiB and a SHA-256", snap)
	}
	for _, p := range []string{snap.Path, etcdadmin.HashFile(snap.Path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	if leftover, _ := filepath.Glob(filepath.Join(filepath.Dir(snap.Path), "*.part")); len(leftover) > 0 {
		t.Errorf("left behind %v", leftover)
	}
	check := exec.Command("sha256sum", "--check", filepath.Base(etcdadmin.HashFile(snap.Path)))
	check.Dir = filepath.Dir(snap.Path)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}

	addr := apiservertest.FreeLoopback(t)
	peer, client := "http://"+addr+":2380", "http://"+addr+":2379"
	data := filepath.Join(t.TempDir(), "restored")
	restore := exec.Command(testbin.MustPath(t, "etcdutl"), "snapshot", "restore", snap.Path, "--data-dir", data,
		"--name", "solo", "--initial-cluster", "solo="+peer, "--initial-advertise-peer-urls", peer)
	if out, err := restore.CombinedOutput(); err != nil {
		t.Fatalf("etcdutl snapshot restore: %v\n%s", err, out)
	}
	apiservertest.StartProcess(t, "restored etcd", filepath.Join(t.TempDir(), "etcd.log"), testbin.MustPath(t, "etcd"),
		"--name", "solo", "--data-dir", data, "--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "solo="+peer)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	etcdtest.WaitHealthy(t, cli, client)
	resp, err := cli.Get(t.Context(), "/registry/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 500 || len(resp.Kvs[0].Value) != 1024 {
		t.Fatalf("the restored etcd holds %d objects, want 500 of 1 KiB", resp.Count)
	}
}

// TestRestoreAfterQuorumLoss follows the documented procedure after losing quorum: every member
// stopped, each member's data directory restored from the same snapshot, every member started
// with its rendered configuration. The cluster comes back with the snapshot's data, its rendered
// members, and revisions past any it handed out before.
func TestRestoreAfterQuorumLoss(t *testing.T) {
	c := startCluster(t, 3)
	putObjects(t, c.cli, 300, 512)
	snap := saveSnapshot(t, c, c.etcd.ClientURLs())
	if _, err := c.cli.Put(t.Context(), "/registry/pods/default/after-the-snapshot", "x"); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		m.Kill()
		if err := os.Rename(m.DataDir(), m.DataDir()+".lost"); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.members {
		r, err := c.etcd.Restore(snap.Path, m.Name, m.DataDir())
		if err != nil {
			t.Fatal(err)
		}
		if r.SHA256 != snap.SHA256 || r.InitialCluster != c.etcd.InitialCluster() || r.Token != "etcdadmin" {
			t.Errorf("restore of %s: %+v", m.Name, r)
		}
		if fi, err := os.Stat(m.DataDir()); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: data directory %v %v, want mode 0700", m.Name, fi.Mode(), err)
		}
	}
	for _, m := range c.members {
		m.Boot(t)
	}
	cli := etcdtest.Client(t, c.dir, c.etcd.ClientURLs()...)
	etcdtest.WaitHealthy(t, cli, c.etcd.ClientURLs()...)
	for _, m := range c.members {
		if n := countObjects(t, c.dir, m.ClientURL); n != 300 {
			t.Errorf("%s holds %d objects after the restore, want the snapshot's 300", m.Name, n)
		}
	}
	list, err := cli.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list.Members {
		got = append(got, m.Name+"="+m.PeerURLs[0])
	}
	if want := c.etcd.InitialCluster(); strings.Join(slices.Sorted(slices.Values(got)), ",") != want {
		t.Errorf("members after the restore %v, want %s", got, want)
	}
	put, err := cli.Put(t.Context(), "/registry/pods/default/after-the-restore", "x")
	if err != nil {
		t.Fatal(err)
	}
	if put.Header.Revision < etcdadmin.RevisionBump {
		t.Errorf("revision %d after the restore, want it past %d", put.Header.Revision, etcdadmin.RevisionBump)
	}
}

// TestRestoreRefuses checks that a restore that cannot be trusted or would overwrite data
// writes nothing and says what is wrong.
func TestRestoreRefuses(t *testing.T) {
	dir, _ := etcdtest.Render(t, etcdtest.LoopbackSpec(t, "etcdadmin", 3))
	etcd, err := etcdadmin.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A file with a matching hash that is no etcd database: only restoring it can tell.
	snapshot := func(t *testing.T, hashLine func(sum string) string) string {
		p := filepath.Join(t.TempDir(), "etcd.db")
		os.WriteFile(p, []byte("not a database"), 0o600)
		if hashLine != nil {
			out, _ := exec.Command("sha256sum", p).Output()
			os.WriteFile(etcdadmin.HashFile(p), []byte(hashLine(strings.Fields(string(out))[0])), 0o600)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		snapshot func(t *testing.T) string
		member   string
		dataDir  func(t *testing.T) string
		want     []string
	}{
		{"no hash file", func(t *testing.T) string { return snapshot(t, nil) }, "c1", nil,
			[]string{"etcd.db has no etcd.db.sha256 beside it"}},
		{"hash mismatch", func(t *testing.T) string {
			return snapshot(t, func(string) string { return strings.Repeat("ab", 32) + "  etcd.db\n" })
		}, "c1", nil, []string{"etcd.db does not match etcd.db.sha256", "damaged"}},
		{"hash file without a hash", func(t *testing.T) string {
			return snapshot(t, func(string) string { return "\n" })
		}, "c1", nil, []string{"etcd.db.sha256 holds no SHA-256"}},
		{"unknown member", func(t *testing.T) string {
			return snapshot(t, func(sum string) string { return sum + "  etcd.db\n" })
		}, "c9", nil, []string{`no etcd member "c9"`, "c1, c2, c3"}},
		{"data directory not empty", func(t *testing.T) string {
			return snapshot(t, func(sum string) string { return sum + "  etcd.db\n" })
		}, "c2", func(t *testing.T) string {
			d := t.TempDir()
			os.MkdirAll(filepath.Join(d, "member", "wal"), 0o700)
			return d
		}, []string{"is not empty (it holds member)", "move its contents aside"}},
		{"not a database", func(t *testing.T) string {
			return snapshot(t, func(sum string) string { return sum + "  etcd.db\n" })
		}, "c3", nil, []string{"for etcd member c3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "etcd")
			if tc.dataDir != nil {
				dataDir = tc.dataDir(t)
			}
			before := listTree(t, dataDir)
			_, err := etcd.Restore(tc.snapshot(t), tc.member, dataDir)
			if err == nil {
				t.Fatal("restored")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if after := listTree(t, dataDir); after != before {
				t.Errorf("the data directory changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// listTree lists the paths under dir ("absent" when there is no dir).
func listTree(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		return "absent"
	}
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	})
	return strings.Join(paths, " ")
}

// TestReplaceLostMember loses one member of three for good (killed, its data gone), replaces
// it, and boots the replacement as its machine would, with the rendered configuration and an
// empty data directory: liftoff-etcd-join has it join the running members, and it becomes
// healthy with the cluster's data.
func TestReplaceLostMember(t *testing.T) {
	c := startCluster(t, 3)
	putObjects(t, c.cli, 200, 512)
	c2 := c.member("c2")

	if _, err := c.etcd.Replace(t.Context(), "c2"); err == nil || !strings.Contains(err.Error(), "etcd member c2 answers at "+c2.ClientURL) {
		t.Fatalf("replacing a member that answers: %v", err)
	}
	if _, err := c.etcd.Replace(t.Context(), "c7"); err == nil || !strings.Contains(err.Error(), `no etcd member "c7"`) {
		t.Fatalf("replacing a member the render does not have: %v", err)
	}

	c2.Kill()
	if err := os.RemoveAll(c2.DataDir()); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(c2.DataDir(), 0o700)
	// liftoff-etcd-join asks the others for their linearizable member list, which they give once
	// they have a leader again (c2 may have led); a machine's boot takes longer than that election.
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		_, err := c.cli.Get(ctx, "liftoff-leader-check")
		cancel()
		if err == nil {
			break
		}
		if t.Context().Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Booted before the replacement, the machine cannot rejoin and says why.
	if out, err := c2.Join(t); err == nil || !strings.Contains(out, "etcd member c2 has no data in "+c2.DataDir()+", but the running members list it as started") ||
		!strings.Contains(out, "liftoff etcd replace --dir OUT c2") {
		t.Fatalf("liftoff-etcd-join for a member that lost its data: %v\n%s", err, out)
	}

	r, err := c.etcd.Replace(t.Context(), "c2")
	if err != nil {
		t.Fatal(err)
	}
	if r.RemovedID == 0 || r.AddedID == 0 || r.AlreadyAdded || r.Members != 3 || r.Healthy != 2 || r.Quorum != 2 ||
		r.Member.PeerURL != strings.Replace(c2.ClientURL, ":2379", ":2380", 1) {
		t.Errorf("replacement %+v", r)
	}
	if !strings.Contains(r.InitialCluster, "c2="+r.Member.PeerURL) || strings.Count(r.InitialCluster, "=") != 3 {
		t.Errorf("initial cluster for the replacement %q", r.InitialCluster)
	}
	again, err := c.etcd.Replace(t.Context(), "c2")
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyAdded || again.AddedID != r.AddedID || again.RemovedID != 0 {
		t.Errorf("replacing again before the replacement started: %+v, want the member added before", again)
	}

	out := c2.Boot(t)
	if !strings.Contains(out, "etcd member c2 joins the running cluster") {
		t.Errorf("liftoff-etcd-join said %q", out)
	}
	start := c2.Config(t, generator.HostEtcdStartConfig)
	if start["initial-cluster-state"] != "existing" {
		t.Errorf("the replacement starts with initial-cluster-state %v, want existing", start["initial-cluster-state"])
	}
	etcdtest.WaitHealthy(t, c.cli, c.etcd.ClientURLs()...)
	list, err := c.cli.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		if m.ID == r.AddedID && m.Name != "c2" {
			t.Errorf("the replacement runs as %q, want c2", m.Name)
		}
	}
	// The replacement catches up from the leader.
	deadline := time.Now().Add(time.Minute)
	for countObjects(t, c.dir, c2.ClientURL) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the replacement does not hold the cluster's 200 objects after a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Restarted with its data, it restarts as rendered.
	if out, err := c2.Join(t); err != nil || out != "" {
		t.Errorf("liftoff-etcd-join with data: %v %q", err, out)
	}
	if start := c2.Config(t, generator.HostEtcdStartConfig); start["initial-cluster-state"] != "new" {
		t.Errorf("restarting with data, the start configuration says %v", start["initial-cluster-state"])
	}

	// With two of three members lost, there is no quorum to replace one with.
	c.member("c1").Kill()
	c.member("c3").Kill()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.etcd.Replace(ctx, "c1"); err == nil || !strings.Contains(err.Error(), "restore every member from a snapshot") {
		t.Errorf("replacing without quorum: %v", err)
	}
}
