package spec_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/liftoff-k8s/liftoff/platforms/all"
	"github.com/liftoff-k8s/liftoff/spec"
)

var update = flag.Bool("update", false, "rewrite docs/spec.md from the spec's types (make docs)")

// TestReferenceIsCurrent fails when docs/spec.md is not the reference the spec's types give;
// `make docs` rewrites it.
func TestReferenceIsCurrent(t *testing.T) {
	file := filepath.Join("..", "docs", "spec.md")
	ref := spec.Reference()
	if *update {
		if err := os.WriteFile(file, []byte(ref), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	current, err := os.ReadFile(file)
	if err != nil || string(current) != ref {
		t.Fatalf("docs/spec.md is stale; run `make docs` and commit the result (%v)", err)
	}
	// Every setting is described, platforms' included.
	for _, line := range strings.Split(ref, "\n") {
		if strings.HasPrefix(line, "- `") && strings.HasSuffix(strings.TrimSpace(line), ")") {
			t.Errorf("a setting without a description: %s", line)
		}
	}
}
