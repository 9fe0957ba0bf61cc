package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// buildModuleProgram builds the main package pkg of this module statically and returns the
// binary's path, under the cache's images/bin/NAME-KEY/ where KEY hashes the module's sources and
// the Go version: a binary built from the same sources is reused without running the go command,
// which would take a second or more to find it up to date.
// only, when given, limits the sources hashed to those directories (for a program that imports
// nothing else of the module).
func buildModuleProgram(ctx context.Context, pkg, name string, only ...string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	key, err := sourceKey(root, only...)
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

// sourceKey hashes what a build of this module's programs depends on: the Go version, go.mod,
// go.sum (which pin every dependency), every non-test Go file and the embedded templates; or,
// with only, go.mod and the Go files in those directories.
func sourceKey(root string, only ...string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s/%s cgo=0\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	walk := []string{root}
	if len(only) > 0 {
		walk = []string{filepath.Join(root, "go.mod")}
		for _, d := range only {
			walk = append(walk, filepath.Join(root, d))
		}
	}
	for _, start := range walk {
		if err := hashTree(h, root, start); err != nil {
			return "", fmt.Errorf("images: hashing the module's sources: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree writes the name and content of every source file under start to h.
func hashTree(h io.Writer, root, start string) error {
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			name := d.Name()
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			if p != root {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		embedded := strings.HasPrefix(rel, "templates"+string(filepath.Separator))
		source := strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")
		if !embedded && !source && rel != "go.mod" && rel != "go.sum" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%q %d\n", filepath.ToSlash(rel), len(b))
		_, err = h.Write(b)
		return err
	})
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

// cacheDir is where images and their programs are cached: testbin's cache directory.
func cacheDir() (string, error) {
	dir, err := testbin.CacheDir()
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	return dir, nil
}
