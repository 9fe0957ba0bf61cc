package outdir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
)

// An asset whose path leaves the output directory is refused before anything is created outside it.
func TestWriteRefusesPathsOutside(t *testing.T) {
	parent := t.TempDir()
	a := &generator.Assets{Cluster: "x"}
	a.Add(generator.Asset{Path: "ok.txt", Mode: 0o644, Data: []byte("ok")},
		generator.Asset{Path: "../../escaped/dir/file", Mode: 0o644, Data: []byte("no")})
	if err := Write(filepath.Join(parent, "out"), a); err == nil {
		t.Fatal("Write accepted an asset outside the output directory")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(parent), "escaped")); err == nil {
		t.Error("Write created a directory outside the output directory")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("Write left %v behind", entries)
	}
}
