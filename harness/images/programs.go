package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// modulePath is the module whose programs (liftoff, liftoff-pause) the images hold.
const modulePath = "github.com/liftoff-k8s/liftoff"

// LiftoffBinary returns liftoff's own command (./cmd/liftoff) built statically from this module's
// sources, the program of the liftoff image: built once per version of the sources and reused
// without running the go command.
func LiftoffBinary(ctx context.Context) (string, error) {
	return program(ctx, liftoffProgram)
}

// buildModuleProgram builds the main package pkg (a directory of this module, "./cmd/liftoff")
// statically and returns the binary's path, under the cache's images/bin/NAME-KEY/ where KEY
// hashes the Go version, go.mod, go.sum and the sources of the module's packages pkg imports: a
// binary built from the same sources is reused without running the go command, which takes
// seconds to relink a program even when nothing it is made of changed.
func buildModuleProgram(ctx context.Context, pkg, name string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	key, err := sourceKey(root, pkg)
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "images", "bin", name+"-"+key[:16])
	bin := filepath.Join(dir, name)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	unlock, err := testbin.Lock(ctx, filepath.Join(cache, "locks", name+"-"+key[:16]+".lock"))
	if err != nil {
		return "", fmt.Errorf("images: waiting for the build of %s: %w", name, err)
	}
	defer unlock()
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	cmd.WaitDelay = 10 * time.Second
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("images: building %s for its image: go build %s: %w\n%s", name, pkg, err, log.String())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	pruneOlder(filepath.Dir(dir), name+"-", key[:16])
	return bin, nil
}

var (
	moduleRootOnce sync.Once
	moduleRootDir  string
	moduleRootErr  error
)

// moduleRoot is the directory of this module's sources: where this file was compiled from, or
// else the module the go command finds from the working directory.
func moduleRoot(ctx context.Context) (string, error) {
	moduleRootOnce.Do(func() {
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			dir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
			if isModule(dir) {
				moduleRootDir = dir
				return
			}
		}
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		if err != nil {
			moduleRootErr = fmt.Errorf("images: finding the liftoff module: go env GOMOD: %w", err)
			return
		}
		dir := filepath.Dir(strings.TrimSpace(string(out)))
		if !isModule(dir) {
			moduleRootErr = fmt.Errorf("images: the liftoff module's sources are needed to build its programs; run from inside %s", modulePath)
			return
		}
		moduleRootDir = dir
	})
	return moduleRootDir, moduleRootErr
}

func isModule(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && bytes.HasPrefix(b, []byte("module "+modulePath+"\n"))
}

// sourceKey hashes what building the main package pkg depends on within this module: the Go
// version, go.mod and go.sum (which pin every dependency), and the files of every package of the
// module that pkg imports, directly or not, found by reading import clauses.
func sourceKey(root, pkg string) (string, error) {
	dirs, err := packageClosure(root, pkg)
	if err != nil {
		return "", fmt.Errorf("images: finding what %s imports: %w", pkg, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s cgo=0\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, root, filepath.Join(root, f)); err != nil {
			return "", fmt.Errorf("images: hashing the module's sources: %w", err)
		}
	}
	for _, dir := range dirs {
		if err := hashPackage(h, root, filepath.Join(root, dir)); err != nil {
			return "", fmt.Errorf("images: hashing the module's sources: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// packageClosure returns the directories, relative to root and sorted, of pkg and of every
// package of this module it imports, directly or not. Every non-test Go file counts, whatever its
// build constraints, so the set is never too small.
func packageClosure(root, pkg string) ([]string, error) {
	seen := map[string]bool{}
	queue := []string{filepath.Clean(pkg)}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return nil, err
		}
		fset := token.NewFileSet()
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(root, dir, e.Name()), nil, parser.ImportsOnly)
			if err != nil {
				return nil, err
			}
			for _, imp := range f.Imports {
				path, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					return nil, err
				}
				if rel, ok := strings.CutPrefix(path, modulePath+"/"); ok {
					queue = append(queue, filepath.FromSlash(rel))
				}
			}
		}
	}
	var dirs []string
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs, nil
}

// hashPackage writes the package's non-test files to h, and everything under its subdirectories
// that hold no Go files (what go:embed can name, like templates/manifests).
func hashPackage(h io.Writer, root, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && hasGoFiles(p) {
				return filepath.SkipDir // another package, hashed if it is imported
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		return hashFile(h, root, p)
	})
}

func hasGoFiles(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(matches) > 0
}

// hashFile writes a file's name, size and content to h.
func hashFile(h io.Writer, root, p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(root, p)
	fmt.Fprintf(h, "%q %d\n", filepath.ToSlash(rel), len(b))
	_, err = h.Write(b)
	return err
}

// pruneOlder removes the entries of dir named prefix + a key of 16 hex digits (+ any extension),
// other than those of key keep, that were last modified more than a day ago: the outputs of older
// inputs, which nothing is likely to ask for again.
func pruneOlder(dir, prefix, keep string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		key, _, _ := strings.Cut(rest, ".")
		if !ok || len(key) != 16 || strings.Trim(key, "0123456789abcdef") != "" || key == keep {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < 24*time.Hour {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
	}
}

// removeStale removes the work directories (.build-*) in dir that a killed build left over an
// hour ago.
func removeStale(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, ".build-*"))
	for _, p := range stale {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.RemoveAll(p)
		}
	}
}

// cacheDir is where images and their programs are cached: testbin's cache directory.
func cacheDir() (string, error) {
	dir, err := testbin.CacheDir()
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	return dir, nil
}
