package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// CNIPluginsFile is the name of the standard CNI plugins' release archive for this machine's
// architecture, as containernetworking/plugins publishes it: cni-plugins-linux-amd64-v1.8.0.tgz.
func CNIPluginsFile() string {
	return fmt.Sprintf("cni-plugins-linux-%s-%s.tgz", runtime.GOARCH, versions.CNIPlugins)
}

// CNIPluginsRelease returns the standard CNI plugins at versions.CNIPlugins, built by testbin, as
// a release archive laid out like upstream's (every plugin, LICENSE and README.md at the top,
// under ./), and the archive's sha512 in hex. Beside it is NAME.sha512 ("HEX  NAME"), as upstream
// publishes it. It is what a machine's liftoff-install-cni-plugins.service downloads. The archive
// is cached like the images, under a directory named by a hash of the plugins.
func CNIPluginsRelease(ctx context.Context) (path, sha512Hex string, err error) {
	plugins := testbin.CNIPlugins()
	t := newTree("cni-plugins")
	for _, p := range plugins {
		bin, err := testbin.Path(ctx, p)
		if err != nil {
			return "", "", fmt.Errorf("images: the CNI plugins release: %w\nBuild the real programs with `make binaries`", err)
		}
		if err := t.fileMode(p, bin, 0o755); err != nil {
			return "", "", err
		}
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\ncni-plugins %s\n", formatVersion, versions.CNIPlugins)
	t.fingerprint(h)
	key := hex.EncodeToString(h.Sum(nil))[:16]

	cache, err := cacheDir()
	if err != nil {
		return "", "", err
	}
	parent := filepath.Join(cache, "images", "releases")
	dir := filepath.Join(parent, "cni-plugins-"+key)
	path = filepath.Join(dir, CNIPluginsFile())
	if sum, err := os.ReadFile(path + ".sha512"); err == nil {
		if hexSum, _, ok := strings.Cut(string(sum), " "); ok && len(hexSum) == 128 {
			if _, err := os.Stat(path); err == nil {
				return path, hexSum, nil
			}
		}
	}

	unlock, err := testbin.Lock(ctx, filepath.Join(cache, "locks", "cni-plugins-"+key+".lock"))
	if err != nil {
		return "", "", fmt.Errorf("images: waiting for the CNI plugins release: %w", err)
	}
	defer unlock()
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", "", err
	}
	work, err := os.MkdirTemp(parent, ".build-*")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)

	// The release's LICENSE and README.md come from the module the plugins were built from.
	src, err := moduleDir(ctx, testbin.CNIPluginsModule, versions.CNIPlugins)
	if err != nil {
		return "", "", err
	}
	for _, doc := range []string{"LICENSE", "README.md"} {
		if err := t.fileMode(doc, filepath.Join(src, doc), 0o644); err != nil {
			return "", "", err
		}
	}

	f, err := os.Create(filepath.Join(work, CNIPluginsFile()))
	if err != nil {
		return "", "", err
	}
	sum := sha512.New()
	if err := writeRelease(io.MultiWriter(f, sum), t); err != nil {
		f.Close()
		return "", "", err
	}
	if err := f.Close(); err != nil {
		return "", "", err
	}
	sha512Hex = hex.EncodeToString(sum.Sum(nil))
	if err := os.WriteFile(filepath.Join(work, CNIPluginsFile()+".sha512"), []byte(sha512Hex+"  "+CNIPluginsFile()+"\n"), 0o644); err != nil {
		return "", "", err
	}
	if err := os.Chmod(work, 0o755); err != nil { // MkdirTemp's is 0700; a file server reads it
		return "", "", err
	}
	os.RemoveAll(dir) // a directory left without its .sha512 by a killed build
	if err := os.Rename(work, dir); err != nil {
		return "", "", err
	}
	pruneOlder(parent, "cni-plugins-", key)
	removeStale(parent)
	return path, sha512Hex, nil
}

// writeRelease writes the tree as a gzipped tar whose entries are under ./, as upstream's are.
func writeRelease(w io.Writer, t *fileTree) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	for _, e := range t.sorted() {
		hdr := &tar.Header{Name: "." + e.path, Typeflag: tar.TypeReg, Mode: int64(e.mode.Perm()), Size: e.size, ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if err := copyFile(tw, e); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// moduleDir is where the go command keeps the source of a module version.
func moduleDir(ctx context.Context, path, version string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", path+"@"+version)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); err != nil || jerr != nil || info.Dir == "" {
		return "", fmt.Errorf("images: locating %s@%s: %v %s", path, version, err, info.Error)
	}
	return info.Dir, nil
}
