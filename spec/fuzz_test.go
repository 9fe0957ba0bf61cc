package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// addExampleSpecs seeds a fuzz target with every spec the project ships.
func addExampleSpecs(f *testing.F) {
	f.Helper()
	files, _ := filepath.Glob("../examples/*/*.hcl")
	more, _ := filepath.Glob("../harness/testdata/*.hcl")
	for _, p := range append(files, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if len(files) == 0 {
		f.Fatal("no example specs under ../examples")
	}
}

// FuzzReadSpec reads and validates arbitrary text as a spec: whatever the input, reading and
// validating end in a spec or in errors that name the spec's file, never in a panic.
func FuzzReadSpec(f *testing.F) {
	addExampleSpecs(f)
	f.Add([]byte(`cluster "x" {}`))
	f.Add([]byte(`cluster "x" { api_server = "https://10.0.0.10:6443" controller "c" { ip = "10.0.0.11" } }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, diags := spec.Parse(src, "fuzz.hcl")
		if diags.HasErrors() {
			if !strings.Contains(diags.Error(), "fuzz.hcl") {
				t.Errorf("a parse error does not name the file: %s", diags.Error())
			}
			return
		}
		if c == nil {
			t.Fatal("no spec and no error")
		}
		full, err := spec.Complete(c)
		if err != nil {
			if msg := err.Error(); msg == "" {
				t.Error("an empty validation error")
			}
			return
		}
		if len(full.Controllers) == 0 {
			t.Error("a valid spec without a controller")
		}
	})
}
