package etcdadmin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// RevisionBump is how far a restore moves etcd's revision past the snapshot's, marking everything
// before compacted (see generator.EtcdRevisionBump): the same here as on a controller that restores
// the spec's etcd_restore snapshot, so that both restore alike.
const RevisionBump = generator.EtcdRevisionBump

// Restored says what a restore wrote.
type Restored struct {
	// Member is the member whose data directory DataDir now holds the snapshot.
	Member, DataDir string
	// SHA256 is the verified digest of the snapshot.
	SHA256 string
	// InitialCluster and Token are what the restored cluster's members were given: the rendered
	// controllers and the cluster's name, the same for every member restored from one snapshot.
	InitialCluster, Token string
}

// Restore writes the data directory dataDir of member from the snapshot at path, after checking
// the snapshot against its hash file, as `etcdutl snapshot restore` does for the rendered
// cluster: every controller is a member, with the peer URL of its rendered configuration, and the
// token is the cluster's name. The members restored from one snapshot form a new cluster holding
// its data, each started with its rendered configuration; revisions move on by RevisionBump.
// dataDir must be empty or missing; nothing is written unless the whole restore succeeds.
func (c *Cluster) Restore(path, member, dataDir string) (_ *Restored, err error) {
	m, err := c.Member(member)
	if err != nil {
		return nil, err
	}
	if err := checkEmpty(dataDir); err != nil {
		return nil, err
	}
	sum, err := VerifySnapshot(path)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dataDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				os.Remove(dataDir)
			}
		}()
	}
	// etcd keeps all its data under member/: restoring into a directory inside dataDir and moving
	// member/ up is atomic, and works where dataDir is a mount point (a separate volume).
	work, err := os.MkdirTemp(dataDir, ".liftoff-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	restored := filepath.Join(work, "data")
	err = etcdutl.NewV3(zap.NewNop()).Restore(etcdutl.RestoreConfig{
		SnapshotPath:        path,
		Name:                m.Name,
		OutputDataDir:       restored,
		PeerURLs:            []string{m.PeerURL},
		InitialCluster:      c.InitialCluster(),
		InitialClusterToken: c.Name,
		RevisionBump:        RevisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		return nil, fmt.Errorf("restoring %s for etcd member %s: %w", path, member, err)
	}
	if err := os.Rename(filepath.Join(restored, "member"), filepath.Join(dataDir, "member")); err != nil {
		return nil, err
	}
	if err := outdir.SyncDir(dataDir); err != nil {
		return nil, err
	}
	return &Restored{Member: m.Name, DataDir: dataDir, SHA256: sum, InitialCluster: c.InitialCluster(), Token: c.Name}, nil
}

// checkEmpty refuses a data directory that holds anything but lost+found (a fresh file system's).
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var found []string
	for _, e := range entries {
		if e.Name() != "lost+found" {
			found = append(found, e.Name())
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("data directory %s is not empty (it holds %s): liftoff restores only into an empty one; move its contents aside first", dir, strings.Join(found, ", "))
	}
	return nil
}
