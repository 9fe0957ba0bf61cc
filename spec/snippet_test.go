package spec_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

// TestCompleteKeepsTranslatedSnippets checks that validation's translation of each snippet is what
// a render gets, so Butane runs once per snippet, and that a spec that fails validation offers none.
func TestCompleteKeepsTranslatedSnippets(t *testing.T) {
	snippet := "variant: flatcar\nversion: 1.1.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hello\n"
	c := &spec.Cluster{Name: "snippets", APIServer: "https://10.0.0.10:6443",
		Controllers: []spec.Node{{Name: "c1", IP: "10.0.0.11", Snippets: []string{snippet}}},
		Workers:     []spec.Node{{Name: "w1", IP: "10.0.0.21", Snippets: []string{snippet}}},
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg, ok := full.Snippet(snippet)
	if !ok || len(cfg.Storage.Files) != 1 || cfg.Storage.Files[0].Path != "/etc/motd" {
		t.Fatalf("Snippet = %+v, %v; want the snippet's /etc/motd", cfg.Storage, ok)
	}
	if _, ok := full.Snippet("variant: flatcar\nversion: 1.1.0\n"); ok {
		t.Error("Snippet offers text the spec does not hold")
	}
	c.OS = "fcos"
	inv, err := spec.Complete(c)
	if err == nil {
		t.Fatal("a flatcar snippet passed for fcos")
	}
	if got, ok := spec.AsInvalid(err); !ok {
		t.Fatalf("%v is not spec.Invalid", err)
	} else if _, ok := got.Cluster.Snippet(snippet); ok || inv != nil {
		t.Error("an invalid spec offers translated snippets")
	}
}
