// Package testcluster renders clusters for the platform adapters' tests and benchmarks, the way the
// CLI does: read the spec, complete it, render it through the render pipeline.
package testcluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Now is when test renders happen.
var Now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// Rendered is a rendered cluster, as the CLI writes it: the generator's assets with the platform's
// additions to each machine's config, and the platform's own files.
type Rendered struct {
	Cluster *spec.Cluster
	Assets  *generator.Assets
}

// Files returns the assets of a kind, in path order.
func (r *Rendered) Files(kind generator.Kind) []generator.Asset {
	var out []generator.Asset
	for _, a := range r.Assets.Files {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// Plain renders the same spec without its platform: what the generator alone gives each machine.
func (r *Rendered) Plain(t testing.TB) *generator.Assets {
	t.Helper()
	res, err := generator.Render(r.Cluster, generator.Options{Now: Now})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return res.Assets
}

// Complete parses and completes a spec, failing the test on any problem.
func Complete(t testing.TB, src string) *spec.Cluster {
	t.Helper()
	c, diags := spec.Parse([]byte(src), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatalf("spec does not parse: %s\n%s", diags.Error(), src)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatalf("spec is invalid: %v", err)
	}
	return full
}

// Problems parses and completes a spec that should be refused and returns its problems formatted
// with file and line. Refusal at parse time (HCL diagnostics) is returned the same way.
func Problems(t testing.TB, src string) string {
	t.Helper()
	c, diags := spec.Parse([]byte(src), "cluster.hcl")
	if diags.HasErrors() {
		return diags.Error()
	}
	_, err := spec.Complete(c)
	if err == nil {
		t.Fatalf("spec was accepted:\n%s", src)
	}
	return err.Error()
}

// Render renders a spec through the render pipeline.
func Render(t testing.TB, src string) *Rendered {
	t.Helper()
	return RenderWith(t, Complete(t, src), generator.Options{Now: Now})
}

// RenderWith renders a completed spec through the render pipeline with opts.
func RenderWith(t testing.TB, c *spec.Cluster, opts generator.Options) *Rendered {
	t.Helper()
	res, err := render.Cluster(c, opts)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return &Rendered{Cluster: c, Assets: res.Assets}
}

// Spec is a cluster spec with the given OS, platform block and machine counts. Machines have
// addresses in 10.0.0.0/16 and MACs 52:54:00:..; extra is added to the cluster block. With matchbox,
// the machines fetch their secrets from 10.0.0.2:9443 unless extra says otherwise.
func Spec(os, platform string, controllers, workers int, extra string) string {
	if strings.Contains(platform, `platform "matchbox"`) && !strings.Contains(extra, "machine_secrets") {
		// Bare-metal machines fetch their secrets from liftoff, as matchbox requires.
		extra += "\n  machine_secrets {\n    server = \"10.0.0.2:9443\"\n  }"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `cluster "test" {
  os           = %q
  api_server   = "https://api.test.example.com:6443"
  pod_cidr     = "10.128.0.0/10"
  service_cidr = "10.3.0.0/16"
  allow_even_controllers = true
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]
%s
%s
`, os, extra, platform)
	for i := range controllers {
		fmt.Fprintf(&b, "  controller \"c%d\" {\n    ip  = \"10.0.0.%d\"\n    mac = \"52:54:00:00:00:%02x\"\n  }\n", i+1, 11+i, i+1)
	}
	for i := range workers {
		fmt.Fprintf(&b, "  worker \"w%d\" {\n    ip  = \"10.0.%d.%d\"\n    mac = \"52:54:00:01:%02x:%02x\"\n  }\n", i+1, 1+i/250, i%250+1, i/256, i%256)
	}
	b.WriteString("}\n")
	return b.String()
}

// Benchmark measures the whole render of a spec with a platform, as `liftoff render` does it
// without writing: the generator with the platform's additions and the platform's own files. It
// reports the files per render.
func Benchmark(b *testing.B, src string) {
	c := Complete(b, src)
	var res *generator.Result
	var err error
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if res, err = render.Cluster(c, generator.Options{Now: Now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(res.Assets.Files)), "files/op")
}
