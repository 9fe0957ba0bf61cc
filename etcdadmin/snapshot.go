package etcdadmin

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// statusTimeout bounds asking one member whether it is healthy.
const statusTimeout = 5 * time.Second

// Snapshot is a saved snapshot.
type Snapshot struct {
	Path string
	// Endpoint is the member it was taken from.
	Endpoint string
	Size     int64
	// Revision is the revision of the newest key it holds; Keys counts its keys.
	Revision int64
	Keys     int
	// SHA256 is the file's digest, also in Path + ".sha256".
	SHA256   string
	Duration time.Duration
}

// HashFile is where the SHA-256 of the snapshot at path is written, in sha256sum's format.
func HashFile(path string) string { return path + ".sha256" }

// SaveSnapshot streams a snapshot from the first of endpoints that is healthy (it answers, knows
// a leader and raises no alarm) into path, and writes its SHA-256 to HashFile(path). Both are
// written atomically with mode 0600: a failed save leaves neither half written.
func SaveSnapshot(ctx context.Context, tlsCfg *tls.Config, endpoints []string, path string) (*Snapshot, error) {
	start := time.Now()
	cli, endpoint, err := healthyMember(ctx, tlsCfg, endpoints)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	resp, err := cli.SnapshotWithVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("requesting a snapshot from %s: %w", endpoint, err)
	}
	defer resp.Snapshot.Close()
	h := sha256.New()
	var size, revision int64
	var keys int
	err = writeAtomic(path, func(w io.Writer) error {
		size, err = io.Copy(io.MultiWriter(w, h), resp.Snapshot)
		if err != nil {
			return fmt.Errorf("receiving the snapshot from %s: %w", endpoint, err)
		}
		// etcd ends a complete snapshot with the SHA-256 of its database, padding the database to
		// 512 bytes: anything else is a stream cut short.
		if size%512 != sha256.Size {
			return fmt.Errorf("the snapshot from %s ended after %d bytes without its checksum", endpoint, size)
		}
		return nil
	}, func(part string) error {
		st, err := etcdutl.NewV3(zap.NewNop()).Status(part)
		if err != nil {
			return fmt.Errorf("the snapshot from %s is not a readable etcd database: %w", endpoint, err)
		}
		revision, keys = st.Revision, st.TotalKey
		return nil
	})
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Path: path, Endpoint: endpoint, Size: size, Revision: revision, Keys: keys, SHA256: hex.EncodeToString(h.Sum(nil))}
	line := snap.SHA256 + "  " + filepath.Base(path) + "\n"
	if err := writeAtomic(HashFile(path), func(w io.Writer) error {
		_, err := io.WriteString(w, line)
		return err
	}, nil); err != nil {
		return nil, err
	}
	snap.Duration = time.Since(start)
	return snap, nil
}

// healthyMember returns a client of the first endpoint that answers a status request, knows a
// leader and raises no alarm, or an error that says what was wrong with each.
func healthyMember(ctx context.Context, tlsCfg *tls.Config, endpoints []string) (*clientv3.Client, string, error) {
	if len(endpoints) == 0 {
		return nil, "", errors.New("no etcd endpoint to take a snapshot from")
	}
	var problems []string
	for _, ep := range endpoints {
		// One client per member: a snapshot comes from one member, the one found healthy.
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tlsCfg, DialTimeout: statusTimeout, Logger: zap.NewNop()})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", ep, err))
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, statusTimeout)
		st, err := cli.Status(sctx, ep)
		cancel()
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s does not answer: %v", ep, err))
		case st.Leader == 0:
			problems = append(problems, fmt.Sprintf("%s knows no leader", ep))
		case len(st.Errors) > 0:
			problems = append(problems, fmt.Sprintf("%s reports %s", ep, strings.Join(st.Errors, "; ")))
		default:
			return cli, ep, nil
		}
		cli.Close()
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
	}
	return nil, "", fmt.Errorf("no healthy etcd member to take a snapshot from: %s", strings.Join(problems, "; "))
}

// writeAtomic writes path through write into path.part with mode 0600, syncs it, has check (if
// any) read it, and renames it into place, then syncs the directory. On failure path is untouched
// and path.part removed.
func writeAtomic(path string, write func(io.Writer) error, check func(part string) error) (err error) {
	part := path + ".part"
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(part)
		}
	}()
	// A .part left by an earlier run keeps its mode through O_TRUNC.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", part, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", part, err)
	}
	if check != nil {
		if err := check(part); err != nil {
			return err
		}
	}
	if err := os.Rename(part, path); err != nil {
		return err
	}
	return outdir.SyncDir(filepath.Dir(path))
}

// VerifySnapshot checks the snapshot at path against the SHA-256 in HashFile(path) and returns
// it. A missing or unreadable hash file is an error: a snapshot is restored only when known whole.
func VerifySnapshot(path string) (string, error) {
	hashFile := HashFile(path)
	raw, err := os.ReadFile(hashFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s has no %s beside it, so it cannot be checked: restore only a snapshot saved by liftoff etcd snapshot, with its .sha256 file", path, filepath.Base(hashFile))
	}
	if err != nil {
		return "", err
	}
	fields := strings.Fields(string(raw))
	if len(fields) == 0 || len(fields[0]) != 2*sha256.Size {
		return "", fmt.Errorf("%s holds no SHA-256 (want sha256sum's format: HEX  FILE)", hashFile)
	}
	want := strings.ToLower(fields[0])
	if _, err := hex.DecodeString(want); err != nil {
		return "", fmt.Errorf("%s holds no SHA-256 (want sha256sum's format: HEX  FILE)", hashFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("%s does not match %s (sha256 %s, recorded %s): the snapshot is damaged or not the one saved", path, filepath.Base(hashFile), got, want)
	}
	return want, nil
}
