package matchbox_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

// BenchmarkRender3Controllers1000Workers measures the matchbox adapter on a rendered Flatcar
// cluster: 1,003 install configs, 2,006 groups and profiles, and the final configs' copies.
func BenchmarkRender3Controllers1000Workers(b *testing.B) {
	testcluster.Benchmark(b, testcluster.Spec("flatcar", `platform "matchbox" {
    matchbox_http_endpoint = "http://matchbox.example.com:8080"
    os_version = "4230.2.3"
  }`, 3, 1000, ""))
}
