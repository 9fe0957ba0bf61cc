package spec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/spec"
)

func BenchmarkParseAndValidate1000Workers(b *testing.B) {
	var s strings.Builder
	s.WriteString("cluster \"scale\" {\n  api_server = \"https://api.scale.example.com:6443\"\n  pod_cidr = \"10.128.0.0/10\"\n")
	for i := range 3 {
		fmt.Fprintf(&s, "  controller \"c%d\" { ip = \"10.0.0.%d\" }\n", i, i+11)
	}
	for i := range 1000 {
		fmt.Fprintf(&s, "  worker \"w%d\" {\n    ip  = \"10.1.%d.%d\"\n    mac = \"52:54:01:00:%02x:%02x\"\n  }\n", i, i/250, i%250+1, i/256, i%256)
	}
	s.WriteString("}\n")
	src := []byte(s.String())
	b.ReportAllocs()
	for b.Loop() {
		c, diags := spec.Parse(src, "scale.hcl")
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		if _, err := spec.Complete(c); err != nil {
			b.Fatal(err)
		}
	}
}
