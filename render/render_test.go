package render_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/render"
)

// A re-render keeps the files that did not change (the same file, not a copy) and writes back what
// someone changed by hand, so the output directory always holds exactly what the spec renders.
func TestIntoKeepsUnchangedFilesAndRestoresEdited(t *testing.T) {
	c := bareMetal(t, 2)
	dir := filepath.Join(t.TempDir(), "out")
	first, err := render.Into(c, dir, generator.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	const kept, edited = "matchbox/groups/scale-w0.json", "ignition/w1.ign"
	inode := func(rel string) uint64 {
		info, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return info.Sys().(*syscall.Stat_t).Ino
	}
	before := inode(kept)
	// Same size, other bytes: only a comparison of the contents notices.
	want := first.Assets.Get(edited).Data
	tampered := append([]byte{}, want...)
	tampered[len(tampered)-2] ^= 1
	if err := os.WriteFile(filepath.Join(dir, edited), tampered, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := render.Into(c, dir, generator.Options{Now: now}); err != nil {
		t.Fatal(err)
	}
	if inode(kept) != before {
		t.Errorf("%s was written again though it did not change", kept)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, edited)); string(got) != string(want) {
		t.Errorf("%s edited by hand was kept by the re-render", edited)
	}
	// Every file matches the index's sha256, and no backup or temporary tree is left beside it.
	if _, err := outdir.Read(dir); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("beside the output directory: %v", entries)
	}
}
