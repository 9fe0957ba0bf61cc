package provider

import (
	"bytes"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/ from the provider's schema (make docs)")

// docsDir is the registry documentation, rendered by tfplugindocs from the provider's schema and
// the templates and examples under provider/docs.
const docsDir = "../docs"

// generatedDirs are the directories of docs/ that tfplugindocs owns entirely.
var generatedDirs = []string{"resources", "data-sources", "guides"}

// providerSchema returns `terraform providers schema -json` for the built provider, keyed by the
// provider's short name as tfplugindocs looks it up.
func providerSchema(t *testing.T, work string) string {
	t.Helper()
	dir := filepath.Join(work, "schema")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(requiredProviders), 0o644); err != nil {
		t.Fatal(err)
	}
	out := newWorkdir(t, dir).must("providers", "schema", "-json")
	var doc struct {
		FormatVersion   string                     `json:"format_version"`
		ProviderSchemas map[string]json.RawMessage `json:"provider_schemas"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("terraform providers schema -json: %v\n%s", err, out)
	}
	schema, ok := doc.ProviderSchemas[Address]
	if !ok {
		t.Fatalf("terraform's schema output has no %s", Address)
	}
	doc.ProviderSchemas = map[string]json.RawMessage{"liftoff": schema}
	b, _ := json.Marshal(doc)
	path := filepath.Join(work, "schema.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readTree reads every file under root, keyed by slash path relative to root.
func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func writeTree(t *testing.T, root string, files map[string][]byte) {
	t.Helper()
	for rel, b := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDocsAreCurrent renders the registry docs with tfplugindocs and fails when docs/ differs.
// `make docs` (go test ./provider -run TestDocsAreCurrent -update) rewrites docs/.
func TestDocsAreCurrent(t *testing.T) {
	work := t.TempDir()
	schema := providerSchema(t, work)
	writeTree(t, filepath.Join(work, "templates"), readTree(t, filepath.Join("docs", "templates")))
	writeTree(t, filepath.Join(work, "examples"), readTree(t, filepath.Join("docs", "examples")))
	for _, args := range [][]string{
		{"generate", "--provider-dir", work, "--provider-name", "liftoff", "--rendered-provider-name", "liftoff",
			"--providers-schema", schema, "--website-source-dir", "templates", "--examples-dir", "examples",
			"--rendered-website-dir", "docs"},
		{"validate", "--provider-dir", work, "--provider-name", "liftoff", "--providers-schema", schema},
	} {
		cmd := exec.Command("go", append([]string{"tool", "tfplugindocs"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tfplugindocs %s: %v\n%s", args[0], err, out)
		}
	}
	generated := readTree(t, filepath.Join(work, "docs"))
	if len(generated) == 0 {
		t.Fatal("tfplugindocs rendered nothing")
	}

	current := readTree(t, docsDir)
	owned := func(rel string) bool {
		if _, ok := generated[rel]; ok {
			return true
		}
		for _, d := range generatedDirs {
			if strings.HasPrefix(rel, d+"/") {
				return true
			}
		}
		return false
	}
	if *update {
		for rel := range current {
			if owned(rel) {
				os.Remove(filepath.Join(docsDir, filepath.FromSlash(rel)))
			}
		}
		writeTree(t, docsDir, generated)
		return
	}
	var stale []string
	for rel, b := range generated {
		if !bytes.Equal(current[rel], b) {
			stale = append(stale, "docs/"+rel)
		}
	}
	for rel := range current {
		if _, ok := generated[rel]; !ok && owned(rel) {
			stale = append(stale, "docs/"+rel+" (no longer generated)")
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Fatalf("docs/ is stale; run `make docs` and commit the result:\n  %s", strings.Join(stale, "\n  "))
	}
}

// TestDocsExamplesPlan plans every example the docs show with the built provider, so an example
// that no longer fits the schema, or that the spec refuses, fails here rather than for a reader.
func TestDocsExamplesPlan(t *testing.T) {
	for _, dir := range []string{"provider", "resources/liftoff_cluster", "resources/liftoff_bootstrap", "data-sources/liftoff_butane"} {
		t.Run(dir, func(t *testing.T) {
			work := t.TempDir()
			files := readTree(t, filepath.Join("docs", "examples", filepath.FromSlash(dir)))
			for name := range files {
				if !strings.HasSuffix(name, ".tf") {
					delete(files, name)
				}
			}
			if dir != "provider" {
				files["providers.tf"] = []byte(requiredProviders)
			}
			writeTree(t, work, files)
			newWorkdir(t, work).must("plan", "-input=false")
		})
	}
}
