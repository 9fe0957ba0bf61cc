package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
)

// TestEtcdCommands runs liftoff etcd snapshot, restore and replace against a rendered cluster of
// three controllers whose etcd members run here as their machines would run them.
func TestEtcdCommands(t *testing.T) {
	dir, res := etcdtest.Render(t, etcdtest.LoopbackSpec(t, "etcdcli", 3))
	members := etcdtest.Members(t, res.Assets, t.TempDir())
	for _, m := range members {
		m.Boot(t)
	}
	m := members[0]
	cli := etcdtest.Client(t, dir, etcdtest.Endpoints(members)...)
	etcdtest.WaitHealthy(t, cli, etcdtest.Endpoints(members)...)
	if _, err := cli.Put(t.Context(), "/registry/namespaces/default", "{}"); err != nil {
		t.Fatal(err)
	}
	secret := func(out string) {
		t.Helper()
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("printed key material:\n%s", out)
		}
	}

	snap := filepath.Join(t.TempDir(), "etcd.db")
	out, errOut, code := runCLI(t, "etcd", "snapshot", "--dir", dir, "--output", snap)
	secret(out + errOut)
	if code != 0 {
		t.Fatalf("etcd snapshot exited %d: %s", code, errOut)
	}
	for _, w := range []string{"saved " + snap + " from " + m.ClientURL, "revision ", " keys, in ", "sha256 ", snap + ".sha256"} {
		if !strings.Contains(out, w) {
			t.Errorf("etcd snapshot printed %q, without %q", out, w)
		}
	}
	// --endpoint chooses the member; one that does not answer is passed over.
	out, errOut, code = runCLI(t, "etcd", "snapshot", "--dir", dir, "--output", snap,
		"--endpoint", "https://127.0.0.1:1", "--endpoint", m.ClientURL)
	if code != 0 || !strings.Contains(out, "from "+m.ClientURL) {
		t.Fatalf("etcd snapshot --endpoint exited %d: %s%s", code, out, errOut)
	}

	data := filepath.Join(t.TempDir(), "c1")
	out, errOut, code = runCLI(t, "etcd", "restore", "--snapshot", snap, "--dir", dir, "--member", "c1", "--data-dir", data)
	secret(out + errOut)
	if code != 0 {
		t.Fatalf("etcd restore exited %d: %s", code, errOut)
	}
	if !strings.Contains(out, "into "+data+" as etcd member c1") || !strings.Contains(out, "members c1=https://") {
		t.Errorf("etcd restore printed %q", out)
	}
	if _, err := os.Stat(filepath.Join(data, "member", "snap", "db")); err != nil {
		t.Errorf("restore wrote no database: %v", err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"restore into a data directory with data", []string{"etcd", "restore", "--snapshot", snap, "--dir", dir, "--member", "c1", "--data-dir", data},
			"liftoff: data directory " + data + " is not empty"},
		{"restore without a hash file", []string{"etcd", "restore", "--snapshot", filepath.Join(dir, generator.IndexPath), "--dir", dir, "--member", "c1", "--data-dir", filepath.Join(t.TempDir(), "x")},
			"index.json has no index.json.sha256 beside it"},
		{"restore from a directory that is no render", []string{"etcd", "restore", "--snapshot", snap, "--dir", t.TempDir(), "--member", "c1", "--data-dir", filepath.Join(t.TempDir(), "x")},
			"holds no liftoff render"},
		{"replace a member that answers", []string{"etcd", "replace", "--dir", dir, "c2"},
			"etcd member c2 answers at " + members[1].ClientURL + ": replace only a member that is lost for good"},
		{"replace without a name", []string{"etcd", "replace", "--dir", dir},
			"accepts 1 arg(s)"},
		{"snapshot with no member answering", []string{"etcd", "snapshot", "--dir", dir, "--output", snap, "--endpoint", "https://127.0.0.1:1"},
			"no healthy etcd member to take a snapshot from: https://127.0.0.1:1 does not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exited %d, printed %q %q; want an error saying %q", code, out, errOut, tc.want)
			}
		})
	}

	members[1].Kill()
	out, errOut, code = runCLI(t, "etcd", "replace", "--dir", dir, "c2")
	secret(out + errOut)
	if code != 0 {
		t.Fatalf("etcd replace exited %d: %s", code, errOut)
	}
	t.Logf("liftoff etcd replace --dir OUT c2:\n%s", out)
	for _, w := range []string{"removed etcd member c2 (", "added etcd member c2 (", "the cluster has 3 members, 2 of the others healthy; 2 must answer",
		filepath.Join(dir, "ignition", "c2.ign"), "an empty etcd data directory /var/lib/etcd", "initial-cluster-state: existing", "initial-cluster: c1=https://"} {
		if !strings.Contains(out, w) {
			t.Errorf("etcd replace printed no %q", w)
		}
	}
	out, errOut, code = runCLI(t, "etcd", "replace", "--dir", dir, "c2")
	if code != 0 || !strings.Contains(out, "etcd member c2 was added already") {
		t.Errorf("etcd replace again exited %d: %s%s", code, out, errOut)
	}

	out, _, _ = runCLI(t, "etcd", "restore", "--help")
	for _, w := range []string{"After losing quorum", "Stop etcd on every controller", "from the same snapshot", "Start etcd on every controller"} {
		if !strings.Contains(out, w) {
			t.Errorf("etcd restore --help does not say %q", w)
		}
	}
}
