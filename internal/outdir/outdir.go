// Package outdir reads and writes a liftoff output directory: the rendered files plus index.json.
// Writing is atomic: the new tree is built beside the old one and swapped in with renames, so a
// failed render leaves the directory as it was.
package outdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/liftoff-k8s/liftoff/generator"
)

// Open returns an earlier render's directory as a file system, or nil when dir is absent or empty.
// A non-empty directory without index.json is refused: it is not liftoff's to overwrite.
func Open(dir string) (fs.FS, *generator.Index, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, nil
	case err != nil:
		return nil, nil, err
	case len(entries) == 0:
		return nil, nil, nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, generator.IndexPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s is not empty and has no %s: it is not a liftoff output directory; choose another --out", dir, generator.IndexPath)
	}
	if err != nil {
		return nil, nil, err
	}
	var idx generator.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, generator.IndexPath), err)
	}
	return os.DirFS(dir), &idx, nil
}

// Write replaces dir with the assets and their index. Files in dir that the previous index does
// not list are someone else's: Write refuses rather than delete them.
func Write(dir string, assets *generator.Assets) (err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	_, old, err := Open(dir)
	if err != nil {
		return err
	}
	if old != nil {
		if stray, err := unlisted(dir, old); err != nil {
			return err
		} else if len(stray) > 0 {
			return fmt.Errorf("%s holds files liftoff did not write (%s); move them elsewhere, liftoff will not delete them", dir, strings.Join(stray, ", "))
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeAll(dir, tmp, assets.Files, old != nil); err != nil {
		return err
	}
	if err := writeFile(tmp, generator.IndexPath, assets.IndexJSON(), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	// One sync of the file system before the swap makes every file durable; a sync per file
	// would cost more than the render itself for a large cluster.
	if err := syncfs(tmp); err != nil {
		return err
	}
	defer func() {
		if err == nil {
			err = SyncDir(parent)
		}
	}()
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	backup := tmp + ".old"
	if err := os.Rename(dir, backup); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if restore := os.Rename(backup, dir); restore != nil {
			return fmt.Errorf("%w (and restoring %s from %s failed: %v)", err, dir, backup, restore)
		}
		return err
	}
	return os.RemoveAll(backup)
}

// writers is how many files writeAll creates at once: file systems create files in different
// directories concurrently, and a render of a large cluster is thousands of small files.
const writers = 4

// writeAll writes the assets under tmp, linking those the old tree in dir already holds unchanged
// (when reuseOld).
func writeAll(dir, tmp string, assets []generator.Asset, reuseOld bool) error {
	// Every directory first, and only inside tmp: writeFile then creates files alone.
	dirs := map[string]bool{}
	for _, a := range assets {
		if _, err := inside(tmp, a.Path); err != nil {
			return err
		}
		dirs[path.Dir(a.Path)] = true
	}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	errs := make([]error, len(assets))
	var wg sync.WaitGroup
	next := make(chan int)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				a := assets[i]
				if reuseOld && reuse(dir, tmp, a) {
					continue
				}
				errs[i] = writeFile(tmp, a.Path, a.Data, a.Mode)
			}
		}()
	}
	for i := range assets {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// reuse links the new tree's file for a to the old tree's when that holds the same bytes with the
// same mode, and reports whether it did. A re-render changes few files: linking costs a fraction
// of creating and writing a file, and the old tree's removal then frees no file that is kept.
func reuse(dir, tmp string, a generator.Asset) bool {
	newPath, err := inside(tmp, a.Path)
	if err != nil {
		return false
	}
	oldPath := filepath.Join(dir, filepath.FromSlash(a.Path))
	info, err := os.Lstat(oldPath)
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != a.Mode || info.Size() != int64(len(a.Data)) {
		return false
	}
	if data, err := os.ReadFile(oldPath); err != nil || !bytes.Equal(data, a.Data) {
		return false
	}
	return os.Link(oldPath, newPath) == nil
}

// inside is where rel is under root, or an error when it would leave root.
func inside(root, rel string) (string, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	if !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", fmt.Errorf("asset path %q leaves the output directory", rel)
	}
	return p, nil
}

// writeFile creates the file rel under root, whose directory exists.
func writeFile(root, rel string, data []byte, mode fs.FileMode) error {
	p, err := inside(root, rel)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// unlisted returns the files under dir that idx does not list (index.json aside).
func unlisted(dir string, idx *generator.Index) ([]string, error) {
	listed := map[string]bool{generator.IndexPath: true}
	for _, a := range idx.Assets {
		listed[a.Path] = true
	}
	var stray []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !listed[filepath.ToSlash(rel)] {
			stray = append(stray, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(stray)
	return stray, err
}

// Read loads every file an output directory's index lists, checking each against its recorded sha256.
func Read(dir string) (*generator.Assets, error) {
	fsys, idx, err := Open(dir)
	if err != nil {
		return nil, err
	}
	if idx == nil {
		return nil, fmt.Errorf("%s holds no liftoff render (no %s)", dir, generator.IndexPath)
	}
	out := &generator.Assets{Cluster: idx.Cluster}
	for _, e := range idx.Assets {
		data, err := fs.ReadFile(fsys, e.Path)
		if err != nil {
			return nil, fmt.Errorf("%s lists %s: %w", generator.IndexPath, e.Path, err)
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != e.SHA256 {
			return nil, fmt.Errorf("%s changed since it was rendered (sha256 differs from %s)", filepath.Join(dir, e.Path), generator.IndexPath)
		}
		info, err := fs.Stat(fsys, e.Path)
		if err != nil {
			return nil, err
		}
		out.Add(generator.Asset{Path: e.Path, Kind: e.Kind, Node: e.Node, Pool: e.Pool, Role: e.Role, Mode: info.Mode().Perm(), Data: data})
	}
	return out, nil
}

func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// SyncDir flushes a directory's entries (a rename into it, a new file) to disk.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// WriteFileAtomic writes data to path with mode: into a hidden temporary file beside it (programs
// that watch the directory, such as the kubelet, ignore names beginning with a dot), synced, then
// renamed into place, so that a reader sees the old file or the whole new one, never a part.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}
