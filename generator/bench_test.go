package generator

import (
	"fmt"
	"strings"
	"testing"
)

// scaleSpec is a 3-controller cluster with n workers.
func scaleSpec(n int) string {
	var b strings.Builder
	b.WriteString(`cluster "scale" {
  api_server   = "https://api.scale.example.com:6443"
  pod_cidr     = "10.128.0.0/10"
  service_cidr = "10.3.0.0/16"
  controller "c1" { ip = "10.0.0.11" }
  controller "c2" { ip = "10.0.0.12" }
  controller "c3" { ip = "10.0.0.13" }
`)
	for i := range n {
		fmt.Fprintf(&b, "  worker \"w%d\" {\n    ip  = \"10.1.%d.%d\"\n    mac = \"52:54:01:00:%02x:%02x\"\n  }\n", i, i/250, i%250+1, i/256, i%256)
	}
	b.WriteString("}\n")
	return b.String()
}

// benchmarkRender measures a re-render: key material exists, as it does after the first apply, so
// the figure is the generator's own cost rather than key generation.
func benchmarkRender(b *testing.B, workers int) {
	c := parseSpec(b, scaleSpec(workers))
	prev := toFS(render(b, c, nil, renderTime).Assets)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res := render(b, c, prev, renderTime)
		if len(res.Assets.Files) < workers {
			b.Fatal("missing files")
		}
	}
}

func BenchmarkRender3Controllers1000Workers(b *testing.B)  { benchmarkRender(b, 1000) }
func BenchmarkRender3Controllers10000Workers(b *testing.B) { benchmarkRender(b, 10000) }

// BenchmarkFirstRender1000Workers includes generating every key.
func BenchmarkFirstRender1000Workers(b *testing.B) {
	c := parseSpec(b, scaleSpec(1000))
	b.ReportAllocs()
	for b.Loop() {
		render(b, c, nil, renderTime)
	}
}
