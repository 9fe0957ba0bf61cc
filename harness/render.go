package harness

import (
	"fmt"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Render renders the spec at specPath into outDir, as `liftoff render` does.
func Render(specPath, outDir string) error {
	c, diags := spec.ReadFile(specPath)
	if diags.HasErrors() {
		return fmt.Errorf("%s: %s", specPath, diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		return fmt.Errorf("%s: %w", specPath, err)
	}
	existing, _, err := outdir.Open(outDir)
	if err != nil {
		return err
	}
	res, err := generator.Render(full, generator.Options{Now: time.Now(), Existing: existing})
	if err != nil {
		return fmt.Errorf("rendering %s: %w", specPath, err)
	}
	return outdir.Write(outDir, res.Assets)
}
