package generator

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/spec"
)

// FuzzRenderValidSpec holds the spec's contract with the generator: every spec that validates
// renders, and renders again over its own output byte for byte the same.
func FuzzRenderValidSpec(f *testing.F) {
	files, _ := filepath.Glob("../examples/*/*.hcl")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if len(files) == 0 {
		f.Fatal("no example specs under ../examples")
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, diags := spec.Parse(src, "fuzz.hcl")
		if diags.HasErrors() {
			return
		}
		full, err := spec.Complete(c)
		if err != nil {
			return
		}
		if len(full.Machines())+len(full.WorkerPools) > 50 {
			return // a large cluster renders the same way, only slower
		}
		first, err := Render(full, Options{Now: renderTime})
		if err != nil {
			t.Fatalf("a spec that validates does not render: %v", err)
		}
		again, err := Render(full, Options{Now: renderTime, Existing: toFS(first.Assets)})
		if err != nil {
			t.Fatalf("rendering over its own output: %v", err)
		}
		if len(again.Assets.Files) != len(first.Assets.Files) {
			t.Fatalf("%d files, then %d", len(first.Assets.Files), len(again.Assets.Files))
		}
		for i, a := range first.Assets.Files {
			b := again.Assets.Files[i]
			if a.Path != b.Path || !bytes.Equal(a.Data, b.Data) || a.Mode != b.Mode {
				t.Errorf("%s differs when rendered again over its own output", a.Path)
			}
		}
	})
}

// FuzzButaneSnippet translates arbitrary text as a user's Butane snippet: it is refused with an
// error or becomes an Ignition config that merges into a machine's, never a panic.
func FuzzButaneSnippet(f *testing.F) {
	f.Add([]byte("variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hello\n"))
	f.Add([]byte("variant: fcos\nversion: 1.5.0\nsystemd:\n  units:\n    - name: x.service\n      enabled: true\n      contents: \"[Service]\\nExecStart=/bin/true\\n\"\n"))
	f.Add([]byte("variant: flatcar\nversion: 1.1.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys: [\"ssh-ed25519 AAAA\"]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := butane.Translate(src)
		if err != nil {
			if err.Error() == "" {
				t.Error("an empty error")
			}
			return
		}
		if _, err := butane.Marshal(butane.Merge(cfg, cfg)); err != nil && err.Error() == "" {
			t.Error("an empty error")
		}
	})
}
