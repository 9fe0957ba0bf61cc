package images

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

// TestLiftoffImageCommandIsReproducible runs liftoff-image (make image) twice, each with an empty
// LIFTOFF_CACHE, so that the liftoff binary is built (go build, sharing the Go build cache) and its
// image assembled from source both times. It checks that the two archives are the same bytes, that
// the archive is a valid OCI layout naming the default reference and its digest, and that the
// image's entrypoint is the liftoff binary, which runs. (TestPauseImageIsReproducibleAndPinnable
// covers the reproducibility of the assembly itself; this covers the liftoff image and the command.)
func TestLiftoffImageCommandIsReproducible(t *testing.T) {
	ctx := t.Context()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	command := filepath.Join(t.TempDir(), "liftoff-image")
	build := exec.CommandContext(ctx, "go", "build", "-o", command, "./harness/images/cmd/liftoff-image")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./harness/images/cmd/liftoff-image: %v\n%s", err, out)
	}
	t.Logf("built liftoff-image in %s", time.Since(start).Round(time.Millisecond))

	sources, err := sourceKey(root, "./cmd/liftoff")
	if err != nil {
		t.Fatal(err)
	}
	ref := spec.WithDefaults(&spec.Cluster{}).Images.Liftoff
	var paths, pinned []string
	for i := range 2 {
		out := filepath.Join(t.TempDir(), "out", "liftoff-image.oci.tar") // out/ does not exist yet
		cmd := exec.CommandContext(ctx, command, "-o", out)
		cmd.Env = append(os.Environ(), "LIFTOFF_CACHE="+t.TempDir())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			t.Fatalf("liftoff-image -o %s: %v\n%s", out, err, stderr.Bytes())
		}
		t.Logf("build %d from an empty LIFTOFF_CACHE: %s: %s", i+1, time.Since(start).Round(time.Millisecond), bytes.TrimSpace(stdout.Bytes()))

		// One line: the reference, pinned by digest, and the size of what was written.
		f := strings.Fields(stdout.String())
		if len(f) != 4 || strings.Count(stdout.String(), "\n") != 1 || f[0] != ref || f[3] != "bytes" ||
			!strings.HasPrefix(f[1], "ghcr.io/liftoff-k8s/liftoff@sha256:") || len(f[1]) != len("ghcr.io/liftoff-k8s/liftoff@sha256:")+64 {
			t.Fatalf("liftoff-image printed %q, want %q, its pinned reference and its size", stdout.String(), ref)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if size, _ := strconv.ParseInt(f[2], 10, 64); size != fi.Size() || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s is %d bytes, mode %s; liftoff-image printed %s bytes", out, fi.Size(), fi.Mode(), f[2])
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(left) > 0 {
			t.Errorf("temporary files left beside the archive: %v", left)
		}
		paths, pinned = append(paths, out), append(pinned, f[1])
	}
	switch {
	case sourcesChanged(t, root, sources):
		t.Logf("liftoff's sources changed during the test: the two builds are not compared")
	case pinned[0] != pinned[1]:
		t.Errorf("two builds from source gave %s and %s", pinned[0], pinned[1])
	case fileSHA512(t, paths[0]) != fileSHA512(t, paths[1]):
		t.Errorf("two builds from source wrote different archives of the same image %s", pinned[0])
	}

	// A valid OCI layout that names the image by the reference and by its digest.
	var names []string
	for _, m := range archiveIndex(t, paths[0]).Manifests {
		names = append(names, m.Annotations["org.opencontainers.image.ref.name"])
	}
	if !slices.Equal(names, []string{ref, pinned[0]}) {
		t.Errorf("the archive names %v, want %s and %s", names, ref, pinned[0])
	}
	dir := untar(t, paths[0])
	digest, err := v1.NewHash(strings.TrimPrefix(pinned[0], "ghcr.io/liftoff-k8s/liftoff@"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := layout.Path(dir).Image(digest)
	if err != nil {
		t.Fatalf("reading the image %s from the archive's OCI layout: %v", digest, err)
	}
	// validate reads layers as gzip; the zstd layers are checked by checkLayers.
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Errorf("the image is not valid: %v", err)
	}
	checkLayers(t, img)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	const entrypoint = "/usr/local/bin/liftoff"
	if !slices.Equal(cf.Config.Entrypoint, []string{entrypoint}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("the image runs %v %v, want the entrypoint %s", cf.Config.Entrypoint, cf.Config.Cmd, entrypoint)
	}

	// The entrypoint is the static liftoff binary: run it from the image's filesystem.
	bin := extractFile(t, img, strings.TrimPrefix(entrypoint, "/"))
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "liftoff "+versions.Liftoff+" ") {
		t.Errorf("%s version: %v\n%s", entrypoint, err, out)
	}
}

// checkLayers checks that each layer is zstd, of the size and digest the manifest says, and that
// its uncompressed tar has the diff ID the config says.
func checkLayers(t *testing.T, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) == 0 || len(layers) != len(m.Layers) || len(layers) != len(cf.RootFS.DiffIDs) {
		t.Fatalf("%d layers, %d in the manifest, %d diff IDs in the config", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	for i, l := range layers {
		if m.Layers[i].MediaType != types.OCILayerZStd {
			t.Errorf("layer %d is %s, want %s", i, m.Layers[i].MediaType, types.OCILayerZStd)
		}
		for _, c := range []struct {
			what   string
			open   func() (io.ReadCloser, error)
			digest v1.Hash
			size   int64 // -1: not known
		}{
			{"compressed", l.Compressed, m.Layers[i].Digest, m.Layers[i].Size},
			{"uncompressed", l.Uncompressed, cf.RootFS.DiffIDs[i], -1},
		} {
			rc, err := c.open()
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			h, n, err := v1.SHA256(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("layer %d, %s: %v", i, c.what, err)
			}
			if h != c.digest || (c.size >= 0 && n != c.size) {
				t.Errorf("layer %d, %s: %s, %d bytes; want %s, %d bytes", i, c.what, h, n, c.digest, c.size)
			}
		}
	}
}

// untar extracts the regular files of the tar at path into a new directory.
func untar(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if !filepath.IsLocal(hdr.Name) {
			t.Fatalf("%s holds %q", path, hdr.Name)
		}
		p := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		w, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// extractFile writes the file at name (no leading slash) in the image's filesystem to a new
// directory, with its mode, and returns its path.
func extractFile(t *testing.T, img v1.Image, name string) string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("the image has no %s: %v", name, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != name {
			continue
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Mode&0o111 == 0 {
			t.Fatalf("%s in the image is type %c, mode %o: not an executable file", name, hdr.Typeflag, hdr.Mode)
		}
		p := filepath.Join(t.TempDir(), filepath.Base(name))
		w, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(hdr.Mode).Perm())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
