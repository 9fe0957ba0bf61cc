// Package testbin builds or locates the real programs that liftoff's tests run: Ignition, etcd,
// the Kubernetes control plane and node programs, CoreDNS, flannel, the CNI plugins, matchbox
// and kube-bench, each at the version pinned in internal/versions.
//
// Programs are built from the Go module proxy with a small wrapper module per recipe and cached
// under $LIFTOFF_CACHE (default ~/.cache/liftoff) as bin/NAME-VERSION/NAME. A cached binary is
// reused as it is; a missing one is built under a file lock, so test packages running in parallel
// build each recipe once, and moved into place atomically, so an interrupted build leaves nothing
// half written.
package testbin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Names lists every program Path knows, in build order.
func Names() []string {
	var names []string
	for _, r := range recipes {
		for _, p := range r.programs {
			names = append(names, p.name)
		}
	}
	return names
}

// Path returns the path of the named program at its pinned version, building it (and the other
// programs of its recipe) if the cache does not have it. Building Kubernetes takes minutes.
func Path(ctx context.Context, name string) (string, error) {
	r, err := recipeOf(name)
	if err != nil {
		return "", err
	}
	root, err := cacheDir()
	if err != nil {
		return "", err
	}
	return r.path(ctx, root, name)
}

// path is Path for one recipe and cache root.
func (r *recipe) path(ctx context.Context, root, name string) (string, error) {
	bin := binPath(root, r, name)
	if isExecutable(bin) {
		return bin, nil
	}

	unlock, err := lock(ctx, filepath.Join(root, "locks", r.name+"-"+r.version+".lock"))
	if err != nil {
		return "", fmt.Errorf("testbin: waiting for the build of %s %s: %w", r.name, r.version, err)
	}
	defer unlock()
	// Another process may have built it while this one waited for the lock.
	if isExecutable(bin) {
		return bin, nil
	}
	if err := r.build(ctx, root); err != nil {
		return "", err
	}
	return bin, nil
}

// MustPath is Path for tests: a program that cannot be built fails the test, with what to run to
// see why. It never skips: a test that needs a real program must run it.
func MustPath(t testing.TB, name string) string {
	t.Helper()
	path, err := Path(t.Context(), name)
	if err != nil {
		t.Fatalf("%s is needed by this test and could not be built: %v\n"+
			"Build it with `make binaries` (or `go run ./internal/testbin/cmd/liftoff-binaries %s`) and fix what that reports.",
			name, err, name)
	}
	return path
}

func recipeOf(name string) (*recipe, error) {
	for _, r := range recipes {
		for _, p := range r.programs {
			if p.name == name {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("testbin: unknown program %q; known: %s", name, strings.Join(Names(), ", "))
}

// CacheDir is the directory liftoff's tests cache what they build in: $LIFTOFF_CACHE, or
// ~/.cache/liftoff. Programs are under its bin/.
func CacheDir() (string, error) { return cacheDir() }

// cacheDir is $LIFTOFF_CACHE, or ~/.cache/liftoff.
func cacheDir() (string, error) {
	if dir := os.Getenv("LIFTOFF_CACHE"); dir != "" {
		return filepath.Abs(dir)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("testbin: no cache directory: set LIFTOFF_CACHE or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "liftoff"), nil
}

func binPath(root string, r *recipe, name string) string {
	return filepath.Join(root, "bin", name+"-"+r.version, name)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Lock takes an exclusive flock on path (creating it and its directory), waiting until it is free
// or ctx ends, so that processes building the same cached thing build it once. unlock releases it.
func Lock(ctx context.Context, path string) (unlock func(), err error) { return lock(ctx, path) }

// lock takes an exclusive flock on path, polling so that a cancelled context stops the wait.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// build writes the recipe's wrapper module into a temporary directory under root, builds all its
// programs there and renames them into bin/. The caller holds the recipe's lock.
func (r *recipe) build(ctx context.Context, root string) error {
	buildRoot := filepath.Join(root, "build")
	if err := os.MkdirAll(buildRoot, 0o755); err != nil {
		return fmt.Errorf("testbin: %w", err)
	}
	// Under the lock, any other work directory of this recipe was left by a killed build.
	stale, _ := filepath.Glob(filepath.Join(buildRoot, r.name+"-"+r.version+"-*"))
	for _, dir := range stale {
		os.RemoveAll(dir)
	}
	work, err := os.MkdirTemp(buildRoot, r.name+"-"+r.version+"-*")
	if err != nil {
		return fmt.Errorf("testbin: %w", err)
	}
	defer os.RemoveAll(work)

	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("testbin: building %s %s needs the go command on PATH: %w", r.name, r.version, err)
	}
	// output runs the go command in the wrapper module and returns what it printed on stdout.
	output := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(),
			// -mod=mod lets the build fill go.sum from the pinned requirements.
			"GOFLAGS=-mod=mod -buildvcs=false",
			"GOWORK=off",
			"GOOS="+runtime.GOOS,
			"GOARCH="+runtime.GOARCH,
		)
		if noSumDB := r.sumModules(); len(noSumDB) > 0 {
			cmd.Env = append(cmd.Env, "GONOSUMDB="+strings.Join(noSumDB, ","))
		}
		// Programs without cgo are static, so that an image needs nothing but the program.
		if r.cgo {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=1")
		} else {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		cmd.WaitDelay = 10 * time.Second
		var stdout, out bytes.Buffer
		cmd.Stdout = io.MultiWriter(&stdout, &out)
		cmd.Stderr = &out
		if err := cmd.Run(); err != nil {
			msg := fmt.Sprintf("testbin: building %s %s: go %s: %v\n%s",
				r.name, r.version, strings.Join(args, " "), err, tail(out.String(), 40))
			if r.hint != "" && ctx.Err() == nil {
				msg += "\nhint: " + r.hint
			}
			return nil, errors.New(msg)
		}
		return stdout.Bytes(), nil
	}
	run := func(args ...string) error {
		_, err := output(args...)
		return err
	}

	if err := run("mod", "init", "liftoff.test/"+r.name); err != nil {
		return err
	}
	if err := r.writeModule(work); err != nil {
		return fmt.Errorf("testbin: writing the %s wrapper module: %w", r.name, err)
	}
	// moduleDir downloads a required module and returns the directory of its source.
	moduleDir := func(path string) (string, error) {
		out, err := output("mod", "download", "-json", path)
		if err != nil {
			return "", err
		}
		var m struct{ Dir string }
		if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
			return "", fmt.Errorf("testbin: building %s %s: go mod download %s printed no directory: %v", r.name, r.version, path, err)
		}
		return m.Dir, nil
	}
	if r.sumsOf != "" {
		dir, err := moduleDir(r.sumsOf)
		if err != nil {
			return err
		}
		if err := appendFile(filepath.Join(work, "go.sum"), filepath.Join(dir, "go.sum")); err != nil {
			return fmt.Errorf("testbin: taking %s's go.sum: %w", r.sumsOf, err)
		}
	}
	out := filepath.Join(work, "out")
	args := []string{"build", "-trimpath", "-ldflags", strings.Join(append([]string{"-s", "-w"}, r.ldflags...), " ")}
	if len(r.tags) > 0 {
		args = append(args, "-tags", strings.Join(r.tags, ","))
	}
	if len(r.programs) == 1 {
		args = append(args, "-o", filepath.Join(out, r.programs[0].name), r.programs[0].pkg)
	} else {
		args = append(args, "-o", out+string(filepath.Separator))
		for _, p := range r.programs {
			args = append(args, p.pkg)
		}
	}
	if err := run(args...); err != nil {
		return err
	}

	// The files go first: a program in place means that the recipe is complete.
	for _, f := range r.files {
		dir, err := moduleDir(f.module)
		if err != nil {
			return err
		}
		if err := installDir(filepath.Join(dir, f.dir), filepath.Join(filepath.Dir(binPath(root, r, r.programs[0].name)), f.dir)); err != nil {
			return fmt.Errorf("testbin: installing %s of %s %s: %w", f.dir, f.module, r.version, err)
		}
	}
	for _, p := range r.programs {
		dst := binPath(root, r, p.name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("testbin: %w", err)
		}
		if err := os.Rename(filepath.Join(out, p.name), dst); err != nil {
			return fmt.Errorf("testbin: installing %s %s: %w", p.name, r.version, err)
		}
	}
	return nil
}

// writeModule adds the recipe's requirements to the go.mod made by `go mod init` and writes its
// main packages.
func (r *recipe) writeModule(dir string) error {
	var mod strings.Builder
	for _, m := range r.require {
		fmt.Fprintf(&mod, "require %s %s\n", m.path, m.version)
	}
	for _, m := range r.replace {
		fmt.Fprintf(&mod, "replace %s => %s %s\n", m.path, m.path, m.version)
	}
	f, err := os.OpenFile(filepath.Join(dir, "go.mod"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("\n" + mod.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	if len(r.sums) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(strings.Join(r.sums, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	for d, src := range r.mains {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d, "main.go"), []byte(src), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sumModules are the modules whose checksums the recipe pins.
func (r *recipe) sumModules() []string {
	var paths []string
	for _, line := range r.sums {
		if p := strings.Fields(line)[0]; !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	return paths
}

// appendFile appends the contents of src to dst.
func appendFile(dst, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// installDir copies the directory tree src to dst, replacing what a killed build left there: it is
// written beside dst and renamed into place.
func installDir(src, dst string) error {
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.CopyFS(tmp, os.DirFS(src)); err != nil {
		return err
	}
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// tail returns the last n lines of s, where a build's error is.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
