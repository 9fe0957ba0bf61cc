package render_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// bareMetal is a matchbox cluster of 3 controllers and n workers: the platform with the most files.
func bareMetal(tb testing.TB, n int) *spec.Cluster {
	tb.Helper()
	var b strings.Builder
	b.WriteString(`cluster "scale" {
  api_server   = "https://api.scale.example.com:6443"
  pod_cidr     = "10.128.0.0/10"
  service_cidr = "10.3.0.0/16"
  machine_secrets {
    server = "10.0.0.2:9443"
  }
  platform "matchbox" {
    matchbox_http_endpoint = "http://matchbox.example.com:8080"
    os_version = "4230.2.3"
  }
  controller "c1" {
    ip  = "10.0.0.11"
    mac = "52:54:00:00:00:01"
  }
  controller "c2" {
    ip  = "10.0.0.12"
    mac = "52:54:00:00:00:02"
  }
  controller "c3" {
    ip  = "10.0.0.13"
    mac = "52:54:00:00:00:03"
  }
`)
	for i := range n {
		fmt.Fprintf(&b, "  worker \"w%d\" {\n    ip  = \"10.1.%d.%d\"\n    mac = \"52:54:01:00:%02x:%02x\"\n  }\n", i, i/250, i%250+1, i/256, i%256)
	}
	b.WriteString("}\n")
	c, diags := spec.Parse([]byte(b.String()), "cluster.hcl")
	if diags.HasErrors() {
		tb.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		tb.Fatal(err)
	}
	return full
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// BenchmarkIntoNewDir1000Workers renders a bare-metal cluster of 1,000 workers into a directory
// that does not exist yet, reusing key material, as a render into a fresh --out does.
func BenchmarkIntoNewDir1000Workers(b *testing.B) {
	c := bareMetal(b, 1000)
	seed := filepath.Join(b.TempDir(), "seed")
	if _, err := render.Into(c, seed, generator.Options{Now: now}); err != nil {
		b.Fatal(err)
	}
	keys := os.DirFS(seed)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := render.Into(c, filepath.Join(b.TempDir(), fmt.Sprint(i)), generator.Options{Now: now, Existing: keys}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntoExistingDir1000Workers re-renders the same cluster into the directory it was
// rendered into, as every later `liftoff render` does: it should cost no more than a new one.
func BenchmarkIntoExistingDir1000Workers(b *testing.B) {
	c := bareMetal(b, 1000)
	dir := filepath.Join(b.TempDir(), "out")
	if _, err := render.Into(c, dir, generator.Options{Now: now}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := render.Into(c, dir, generator.Options{Now: now}); err != nil {
			b.Fatal(err)
		}
	}
}
