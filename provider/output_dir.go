package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// absolute resolves output_dir against the directory terraform runs in, which is the provider's.
func absolute(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// removeRender removes what liftoff wrote to dir: the files its index.json lists, the index, and the
// directories that leaves empty. Anything else in dir is someone else's and stays.
func removeRender(dir string) error {
	dir = filepath.Clean(dir)
	_, idx, err := outdir.Open(dir)
	if err != nil || idx == nil {
		return err
	}
	dirs := map[string]bool{}
	for _, a := range append(idx.Assets, generator.IndexEntry{Path: generator.IndexPath}) {
		p := filepath.Join(dir, filepath.FromSlash(a.Path))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			return fmt.Errorf("%s lists %q, which is outside %s; remove the directory by hand", generator.IndexPath, a.Path, dir)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		for d := filepath.Dir(p); d != dir; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	ordered := make([]string, 0, len(dirs)+1)
	for d := range dirs {
		ordered = append(ordered, d)
	}
	// Deepest first, so parents are empty by the time they are reached.
	sort.Slice(ordered, func(i, j int) bool { return len(ordered[i]) > len(ordered[j]) })
	for _, d := range append(ordered, dir) {
		if entries, err := os.ReadDir(d); err == nil && len(entries) == 0 {
			if err := os.Remove(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// renderDrift says how dir differs from the render whose index.json is want, or returns "" when dir
// holds exactly that render.
func renderDrift(dir, want string) string {
	assets, err := outdir.Read(dir)
	if err != nil {
		return err.Error()
	}
	if indexInState(assets) != want {
		return fmt.Sprintf("%s lists other files than the render in state", filepath.Join(dir, generator.IndexPath))
	}
	return ""
}
