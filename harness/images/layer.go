package images

import (
	"archive/tar"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
)

// epoch is the modification time of every file in an image and of the image itself, so that the
// same inputs give the same bytes.
var epoch = time.Unix(0, 0).UTC()

// An entry is one file, directory or symbolic link of a layer. A file's content is either data or
// the host file at source.
type entry struct {
	path   string // in the image, absolute and clean
	mode   os.FileMode
	link   string // a symbolic link's target
	data   []byte
	source string // a host file whose content this is
	// size and mtime are the host file's when the entry was made: part of the cache key, and
	// checked again when the layer is written.
	size  int64
	mtime time.Time
}

func (e *entry) isDir() bool     { return e.mode.IsDir() }
func (e *entry) isSymlink() bool { return e.mode&os.ModeSymlink != 0 }

// A fileTree is the content of one layer, checked as it is added: no path is added twice with
// different content, and nothing goes below a symbolic link.
type fileTree struct {
	name    string // says what the layer is in the image's history
	entries map[string]*entry
}

func newTree(name string) *fileTree {
	return &fileTree{name: name, entries: map[string]*entry{}}
}

// add adds e and the directories above it.
func (t *fileTree) add(e *entry) error {
	e.path = path.Clean("/" + e.path)
	if e.path == "/" {
		return nil
	}
	for dir := path.Dir(e.path); dir != "/"; dir = path.Dir(dir) {
		if have, ok := t.entries[dir]; ok {
			if !have.isDir() {
				return fmt.Errorf("images: %s in layer %s would be below %s, which is not a directory", e.path, t.name, dir)
			}
			continue
		}
		t.entries[dir] = &entry{path: dir, mode: os.ModeDir | 0o755}
	}
	if have, ok := t.entries[e.path]; ok {
		if have.isDir() && e.isDir() {
			have.mode = e.mode
			return nil
		}
		if have.mode == e.mode && have.link == e.link && have.source == e.source && string(have.data) == string(e.data) {
			return nil
		}
		return fmt.Errorf("images: %s is added twice to layer %s with different content", e.path, t.name)
	}
	t.entries[e.path] = e
	return nil
}

func (t *fileTree) dir(p string, perm os.FileMode) error {
	return t.add(&entry{path: p, mode: os.ModeDir | perm})
}

func (t *fileTree) data(p string, perm os.FileMode, data string) error {
	return t.add(&entry{path: p, mode: perm, data: []byte(data)})
}

func (t *fileTree) symlink(p, target string) error {
	return t.add(&entry{path: p, mode: os.ModeSymlink | 0o777, link: target})
}

// file adds the host file src at p, with src's permissions.
func (t *fileTree) file(p, src string) error { return t.fileMode(p, src, 0) }

// fileMode adds the host file src at p with permissions perm, or src's when perm is 0.
func (t *fileTree) fileMode(p, src string, perm os.FileMode) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("images: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("images: %s is not a regular file", src)
	}
	if perm == 0 {
		perm = fi.Mode().Perm()
	}
	return t.add(&entry{path: p, mode: perm, source: src, size: fi.Size(), mtime: fi.ModTime()})
}

// hostPath adds the host file at p at the same path, with every symbolic link on the way to it
// (on Debian /lib is one, to usr/lib), so that the names a program or the dynamic loader uses
// resolve in the image as they do on the host. It returns the path of the file itself.
func (t *fileTree) hostPath(p string) (string, error) {
	p = path.Clean(p)
	for hops := 0; hops < 40; hops++ {
		resolved := "/"
		rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
		restarted := false
		for i, comp := range rest {
			next := path.Join(resolved, comp)
			fi, err := os.Lstat(next)
			if err != nil {
				return "", fmt.Errorf("images: %w", err)
			}
			switch {
			case fi.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(next)
				if err != nil {
					return "", fmt.Errorf("images: %w", err)
				}
				if err := t.symlink(next, target); err != nil {
					return "", err
				}
				if !path.IsAbs(target) {
					target = path.Join(resolved, target)
				}
				p = path.Join(append([]string{target}, rest[i+1:]...)...)
				restarted = true
			case fi.IsDir():
				if i == len(rest)-1 {
					return "", fmt.Errorf("images: %s is a directory", next)
				}
				resolved = next
				continue
			default:
				if i != len(rest)-1 {
					return "", fmt.Errorf("images: %s is not a directory", next)
				}
				return next, t.file(next, next)
			}
			break
		}
		if !restarted {
			return "", fmt.Errorf("images: cannot resolve %s", p)
		}
	}
	return "", fmt.Errorf("images: too many symbolic links resolving %s", p)
}

// librarySearchPath is where the dynamic loader of a Debian amd64 or arm64 host finds the
// libraries a program names (ld.so.conf's directories, then the defaults).
var librarySearchPath = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
	"/usr/local/lib", "/lib", "/usr/lib", "/lib64", "/usr/lib64",
}

// dynamic adds the host ELF program or library at p with what it needs to load: its interpreter
// and every shared library it names, transitively, as ldd lists them.
func (t *fileTree) dynamic(p string, seen map[string]bool) error {
	real, err := t.hostPath(p)
	if err != nil {
		return err
	}
	if seen[real] {
		return nil
	}
	seen[real] = true
	f, err := elf.Open(real)
	if err != nil {
		return fmt.Errorf("images: %s: %w", real, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return fmt.Errorf("images: %s: reading its interpreter: %w", real, err)
		}
		if err := t.dynamic(strings.TrimRight(string(b), "\x00"), seen); err != nil {
			return err
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("images: %s: %w", real, err)
	}
	for _, lib := range libs {
		found := ""
		for _, dir := range librarySearchPath {
			if _, err := os.Stat(path.Join(dir, lib)); err == nil {
				found = path.Join(dir, lib)
				break
			}
		}
		if found == "" {
			return fmt.Errorf("images: %s needs %s, which is in none of %s", real, lib, strings.Join(librarySearchPath, ", "))
		}
		if err := t.dynamic(found, seen); err != nil {
			return err
		}
	}
	return nil
}

// sorted returns the tree's entries in path order, parents first.
func (t *fileTree) sorted() []*entry {
	out := make([]*entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// fingerprint writes what the layer is made of to h: every entry, and for host files their size
// and modification time rather than their content, so that checking a cached image costs a stat
// per file. The programs it holds are immutable once built (their paths name their versions).
func (t *fileTree) fingerprint(w io.Writer) {
	fmt.Fprintf(w, "layer %q\n", t.name)
	for _, e := range t.sorted() {
		fmt.Fprintf(w, "%q %o %q", e.path, uint32(e.mode), e.link)
		if e.source != "" {
			fmt.Fprintf(w, " host %q %d %d", e.source, e.size, e.mtime.UnixNano())
		}
		if e.data != nil {
			sum := sha256.Sum256(e.data)
			fmt.Fprintf(w, " data %s", hex.EncodeToString(sum[:]))
		}
		fmt.Fprintln(w)
	}
}

// writeTar writes the tree as an uncompressed tar with fixed times and owners, entries sorted.
func (t *fileTree) writeTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	for _, e := range t.sorted() {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    int64(e.mode.Perm()),
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if e.mode&os.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case e.isDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.isSymlink():
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
			if e.source != "" {
				hdr.Size = e.size
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if e.source == "" {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFile copies a host file into the tar, failing if it changed since the entry was made.
func copyFile(w io.Writer, e *entry) error {
	f, err := os.Open(e.source)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != e.size || !fi.ModTime().Equal(e.mtime) {
		return fmt.Errorf("images: %s changed while its image was built", e.source)
	}
	n, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("images: copying %s: %w", e.source, err)
	}
	if n != e.size {
		return fmt.Errorf("images: %s changed while its image was built", e.source)
	}
	return nil
}

// writeLayerFile writes the tree as a zstd-compressed tar file in dir and returns it as a layer.
// zstd, which containerd unpacks since 1.5, makes the archives a quarter of their tar size and
// imports faster than an uncompressed or gzipped tar; the encoder gives the same bytes for the
// same input (klauspost/compress is pinned in go.mod).
func (t *fileTree) writeLayerFile(dir string) (*fileLayer, error) {
	f, err := os.CreateTemp(dir, "layer-*.tar.zst")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	compressed := sha256.New()
	counter := &countingWriter{w: io.MultiWriter(f, compressed)}
	zw, err := zstd.NewWriter(counter, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, err
	}
	uncompressed := sha256.New()
	if err := t.writeTar(io.MultiWriter(zw, uncompressed)); err != nil {
		zw.Close()
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{
		path:   filepath.Clean(f.Name()),
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(compressed.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(uncompressed.Sum(nil))},
		size:   counter.n,
	}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// A fileLayer is a zstd-compressed layer in a file.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
}

func (l *fileLayer) Digest() (v1.Hash, error)           { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)           { return l.diffID, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)               { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) {
	return types.OCILayerZStd, nil
}

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := zstd.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &zstdReadCloser{zr, f}, nil
}

type zstdReadCloser struct {
	*zstd.Decoder
	f *os.File
}

func (z *zstdReadCloser) Close() error {
	z.Decoder.Close()
	return z.f.Close()
}
