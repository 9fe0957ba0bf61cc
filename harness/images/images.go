// Package images builds the container images a local test cluster runs, from the real programs
// testbin builds and this module's own, and imports them into containerd: nothing is pulled.
//
// An image is chosen by the last path element of its repository (kube-apiserver, coredns,
// flannel, pause, ...), so whatever registry and tag a spec names, the image holds the program the
// rendered manifests run from it, at the path and with the entrypoint of the upstream image.
//
// Each image is written as an OCI archive that names it by the reference asked for and by its
// digest (repository@sha256:...), so a spec can pin images by digest as a user of a private
// registry would. Every image has a base layer (/tmp, root and nobody, nsswitch.conf), the host
// tools it needs (iptables, busybox) and its programs; layers are zstd tars. Builds are
// reproducible (fixed times, owners and order, a pinned encoder) and cached under
// $LIFTOFF_CACHE/images (default ~/.cache/liftoff/images), keyed by a hash of their inputs:
// reusing a cached archive costs a stat per file it holds.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/spec"
)

// An Archive is one built image.
type Archive struct {
	// Ref is the reference it was built for, as given.
	Ref string
	// Names are the image names containerd gets on import: Ref, Ref as the CRI normalizes it
	// when that differs (docker.io/library/...), and Repository@Digest.
	Names []string
	// Path is the OCI archive (ctr images import reads it).
	Path string
	// Digest is the image's manifest digest, "sha256:...", the same whatever Ref is.
	Digest string
	// Size is the archive's size in bytes.
	Size int64
}

// Pinned returns the image's reference pinned by digest (repository@sha256:...), as a spec names
// an image from a private registry.
func (a Archive) Pinned() string {
	r, err := parseRef(a.Ref)
	if err != nil {
		return a.Ref
	}
	return r.repository + "@" + a.Digest
}

// ForSpec returns the references of every image a cluster with these images runs, in spec order,
// each once.
func ForSpec(imgs *spec.Images) []string {
	if imgs == nil {
		return nil
	}
	var refs []string
	seen := map[string]bool{}
	for _, ref := range []string{
		imgs.KubeAPIServer, imgs.KubeControllerManager, imgs.KubeScheduler, imgs.KubeProxy,
		imgs.CoreDNS, imgs.Flannel, imgs.FlannelCNIPlugin, imgs.Pause, imgs.Liftoff,
	} {
		if ref != "" && !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	return refs
}

// Build builds (or finds in the cache) the image of each reference, building the programs they
// hold if testbin's cache lacks them (minutes for Kubernetes). A reference pinned by digest must
// pin the digest the image has; the error says which that is.
func Build(ctx context.Context, refs []string) ([]Archive, error) {
	out := make([]Archive, 0, len(refs))
	for _, ref := range refs {
		a, err := build(ctx, ref)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// An ImportOption changes what Import does.
type ImportOption func(*importOptions)

type importOptions struct{ noUnpack bool }

// NoUnpack leaves the images packed: containerd's CRI unpacks an image when it first creates a
// container of it, so a machine pays only for the images it runs. Importing is then about a third
// faster.
func NoUnpack() ImportOption { return func(o *importOptions) { o.noUnpack = true } }

// Import imports the archives into the containerd at address (its socket) in the k8s.io namespace,
// where the CRI looks, with ctr (found on PATH when ctr is ""), and unpacks them for containerd's
// default snapshotter. They go in as one stream, each layer once, so that one ctr does the work.
func Import(ctx context.Context, ctr, address string, archives []Archive, opts ...ImportOption) error {
	var o importOptions
	for _, opt := range opts {
		opt(&o)
	}
	if len(archives) == 0 {
		return nil
	}
	if ctr == "" {
		var err error
		if ctr, err = exec.LookPath("ctr"); err != nil {
			return fmt.Errorf("images: importing needs ctr, from the Debian package containerd (make deps): %w", err)
		}
	}
	var refs []string
	for _, a := range archives {
		refs = append(refs, a.Ref)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeMerged(pw, archives)) }()
	args := []string{"--address", address, "--namespace", "k8s.io", "images", "import"}
	if o.noUnpack {
		args = append(args, "--no-unpack")
	}
	cmd := exec.CommandContext(ctx, ctr, append(args, "-")...)
	cmd.Stdin = pr
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if ctr stopped reading
	if err != nil {
		return fmt.Errorf("images: importing %s into the containerd at %s: %w\n%s",
			strings.Join(refs, ", "), address, err, bytes.TrimSpace(out))
	}
	return nil
}

// writeMerged writes the archives as one OCI layout: every blob once, and an index naming every
// image.
func writeMerged(w io.Writer, archives []Archive) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, a := range archives {
		if err := copyBlobs(tw, a.Path, written, &index); err != nil {
			return fmt.Errorf("images: reading %s: %w", a.Path, err)
		}
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(ociLayout)}, {"index.json", rawIndex}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Size: int64(len(f.data)), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyBlobs copies the blobs of the archive at path that are not yet written, and adds its
// index's manifests to index.
func copyBlobs(tw *tar.Writer, path string, written map[string]bool, index *v1.IndexManifest) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case hdr.Name == "index.json":
			var idx v1.IndexManifest
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return err
			}
			index.Manifests = append(index.Manifests, idx.Manifests...)
		case strings.HasPrefix(hdr.Name, "blobs/") && hdr.Typeflag == tar.TypeReg && !written[hdr.Name]:
			written[hdr.Name] = true
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
}

// formatVersion changes when the way images are made changes, so that cached archives of an
// older way are not reused.
const formatVersion = "liftoff-images 2 zstd"

// A reference is an image reference taken apart.
type reference struct {
	raw        string
	repository string // as written, without tag or digest
	tag        string
	digest     string // "sha256:..."
}

func parseRef(ref string) (reference, error) {
	if _, err := name.ParseReference(ref); err != nil {
		return reference{}, fmt.Errorf("images: %q is not an image reference: %w", ref, err)
	}
	r := reference{raw: ref}
	rest, digest, found := strings.Cut(ref, "@")
	if found {
		r.digest = digest
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, r.tag = rest[:i], rest[i+1:]
	}
	r.repository = rest
	return r, nil
}

// kind is the last path element of the repository, which says what the image holds.
func (r reference) kind() string {
	return r.repository[strings.LastIndex(r.repository, "/")+1:]
}

// normalized is the repository as containerd's CRI names it: with a registry, docker.io's
// official images under library/.
func (r reference) normalized() string {
	first, _, hasSlash := strings.Cut(r.repository, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return r.repository
	}
	if !hasSlash {
		return "docker.io/library/" + r.repository
	}
	return "docker.io/" + r.repository
}

// names are the image names an archive gives its image: the reference as given, as the CRI
// normalizes it, and pinned by the digest.
func (r reference) names(digest string) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	add(r.raw)
	norm := r.normalized()
	switch {
	case r.tag != "" && r.digest != "":
		add(norm + ":" + r.tag + "@" + r.digest)
	case r.tag != "":
		add(norm + ":" + r.tag)
	case r.digest == "":
		add(norm + ":latest")
	}
	if digest != "" {
		add(norm + "@" + digest)
	}
	return names
}

// meta is what the cache keeps beside an archive.
type meta struct {
	Ref    string   `json:"ref"`
	Names  []string `json:"names"`
	Digest string   `json:"digest"`
	Size   int64    `json:"size"`
}

// build returns the archive of one reference, from the cache when its inputs are unchanged.
func build(ctx context.Context, ref string) (Archive, error) {
	r, err := parseRef(ref)
	if err != nil {
		return Archive{}, err
	}
	img, ok := images[r.kind()]
	if !ok {
		return Archive{}, fmt.Errorf("images: no image is known for %s (repository %q); known: %s",
			ref, r.kind(), strings.Join(Repositories(), ", "))
	}
	trees, config, err := contents(ctx, r.kind(), img)
	if err != nil {
		return Archive{}, fmt.Errorf("images: %s: %w", ref, err)
	}

	h := sha256.New()
	fmt.Fprintf(h, "%s\n%q %s/%s\n", formatVersion, ref, runtime.GOOS, runtime.GOARCH)
	cfg, _ := json.Marshal(config)
	fmt.Fprintf(h, "config %s\n", cfg)
	for _, t := range trees {
		t.fingerprint(h)
	}
	key := hex.EncodeToString(h.Sum(nil))[:16]

	cache, err := cacheDir()
	if err != nil {
		return Archive{}, err
	}
	dir := filepath.Join(cache, "images")
	base := filepath.Join(dir, r.kind()+"-"+key)
	if a, ok := cached(base, ref); ok {
		return a, nil
	}
	unlock, err := testbin.Lock(ctx, filepath.Join(cache, "locks", "image-"+r.kind()+"-"+key+".lock"))
	if err != nil {
		return Archive{}, fmt.Errorf("images: waiting for the build of %s: %w", ref, err)
	}
	defer unlock()
	if a, ok := cached(base, ref); ok {
		return a, nil
	}
	a, err := write(r, trees, config, dir, base)
	if err != nil {
		return Archive{}, fmt.Errorf("images: building %s: %w", ref, err)
	}
	pruneOlder(dir, r.kind()+"-", key)
	removeStale(dir)
	return a, nil
}

// contents returns the layers and config of an image: the base, the host's tools if it has any,
// and its programs.
func contents(ctx context.Context, kind string, img image) ([]*fileTree, v1.Config, error) {
	baseT, err := baseTree()
	if err != nil {
		return nil, v1.Config{}, err
	}
	trees := []*fileTree{baseT}
	if img.iptables || img.busybox {
		tools, err := toolsTree(ctx, img)
		if err != nil {
			return nil, v1.Config{}, err
		}
		trees = append(trees, tools)
	}
	progs := newTree(kind)
	var paths []string
	for p := range img.programs {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		src, err := program(ctx, img.programs[p])
		if err != nil {
			return nil, v1.Config{}, err
		}
		// 0755 whatever the umask the program was built under.
		if err := progs.fileMode(p, src, 0o755); err != nil {
			return nil, v1.Config{}, err
		}
	}
	trees = append(trees, progs)
	config := v1.Config{
		Env:        []string{"PATH=" + Path},
		Entrypoint: img.entrypoint,
		Cmd:        img.cmd,
		WorkingDir: "/",
	}
	return trees, config, nil
}

// cached returns the archive at base.tar if its metadata says it is ref's, and marks it used.
func cached(base, ref string) (Archive, bool) {
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		return Archive{}, false
	}
	var m meta
	if json.Unmarshal(b, &m) != nil || m.Ref != ref {
		return Archive{}, false
	}
	fi, err := os.Stat(base + ".tar")
	if err != nil || fi.Size() != m.Size {
		return Archive{}, false
	}
	now := time.Now()
	os.Chtimes(base+".json", now, now)
	os.Chtimes(base+".tar", now, now)
	return Archive{Ref: m.Ref, Names: m.Names, Path: base + ".tar", Digest: m.Digest, Size: m.Size}, true
}

// write builds the image and writes base.tar and base.json, each atomically.
func write(r reference, trees []*fileTree, config v1.Config, dir, base string) (Archive, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Archive{}, err
	}
	work, err := os.MkdirTemp(dir, ".build-*")
	if err != nil {
		return Archive{}, err
	}
	defer os.RemoveAll(work)

	img, err := assemble(trees, config, work)
	if err != nil {
		return Archive{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return Archive{}, err
	}
	digest := d.String()
	if r.digest != "" && r.digest != digest {
		return Archive{}, fmt.Errorf("%s pins %s, but the image liftoff builds for %s is %s: pin that",
			r.raw, r.digest, r.kind(), digest)
	}
	names := r.names(digest)

	tmp := filepath.Join(work, "image.tar")
	f, err := os.Create(tmp)
	if err != nil {
		return Archive{}, err
	}
	size, err := writeOCIArchive(f, img, names)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Archive{}, err
	}
	m, err := json.MarshalIndent(meta{Ref: r.raw, Names: names, Digest: digest, Size: size}, "", "  ")
	if err != nil {
		return Archive{}, err
	}
	if err := os.WriteFile(filepath.Join(work, "image.json"), append(m, '\n'), 0o644); err != nil {
		return Archive{}, err
	}
	// The archive first: metadata without its archive is never seen.
	if err := os.Rename(tmp, base+".tar"); err != nil {
		return Archive{}, err
	}
	if err := os.Rename(filepath.Join(work, "image.json"), base+".json"); err != nil {
		return Archive{}, err
	}
	return Archive{Ref: r.raw, Names: names, Path: base + ".tar", Digest: digest, Size: size}, nil
}

// assemble makes the image from its layers (written into work) and config, with go-containerregistry.
func assemble(trees []*fileTree, config v1.Config, work string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for _, t := range trees {
		l, err := t.writeLayerFile(work)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayerZStd,
			History: v1.History{
				Created:   v1.Time{Time: epoch},
				CreatedBy: "liftoff harness/images: " + t.name,
			},
		})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = runtime.GOARCH
	cf.OS = "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config = config
	return mutate.ConfigFile(img, cf)
}

const ociLayout = `{"imageLayoutVersion":"1.0.0"}`

// writeOCIArchive writes img as a tar of an OCI image layout whose index names it once per name
// (containerd's io.containerd.image.name), and returns the bytes written. Blobs are written as
// they are, so containerd keeps the manifest digest.
func writeOCIArchive(w io.Writer, img v1.Image, names []string) (int64, error) {
	cw := &countingWriter{w: w}
	tw := tar.NewWriter(cw)
	header := func(name string, size int64, typ byte) error {
		mode := int64(0o644)
		if typ == tar.TypeDir {
			mode = 0o755
		}
		return tw.WriteHeader(&tar.Header{Name: name, Size: size, Typeflag: typ, Mode: mode, ModTime: epoch, Format: tar.FormatPAX})
	}
	small := func(name string, b []byte) error {
		if err := header(name, int64(len(b)), tar.TypeReg); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := small("oci-layout", []byte(ociLayout)); err != nil {
		return 0, err
	}
	if err := header("blobs/", 0, tar.TypeDir); err != nil {
		return 0, err
	}
	if err := header("blobs/sha256/", 0, tar.TypeDir); err != nil {
		return 0, err
	}
	written := map[v1.Hash]bool{}
	blob := func(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
		if written[h] {
			return nil
		}
		written[h] = true
		if err := header("blobs/"+h.Algorithm+"/"+h.Hex, size, tar.TypeReg); err != nil {
			return err
		}
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		n, err := io.Copy(tw, rc)
		if err == nil && n != size {
			err = fmt.Errorf("blob %s is %d bytes, not %d", h, n, size)
		}
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return 0, err
		}
		size, err := l.Size()
		if err != nil {
			return 0, err
		}
		if err := blob(d, size, l.Compressed); err != nil {
			return 0, err
		}
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return 0, err
	}
	if err := blob(configName, int64(len(rawConfig)), bytesOpener(rawConfig)); err != nil {
		return 0, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	digest, err := img.Digest()
	if err != nil {
		return 0, err
	}
	if err := blob(digest, int64(len(rawManifest)), bytesOpener(rawManifest)); err != nil {
		return 0, err
	}

	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, n := range names {
		index.Manifests = append(index.Manifests, v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Digest:    digest,
			Size:      int64(len(rawManifest)),
			Annotations: map[string]string{
				"io.containerd.image.name":          n,
				"org.opencontainers.image.ref.name": n,
			},
		})
	}
	rawIndex, err := json.Marshal(index)
	if err != nil {
		return 0, err
	}
	if err := small("index.json", rawIndex); err != nil {
		return 0, err
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return cw.n, nil
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}
