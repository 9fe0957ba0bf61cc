package aws_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

// BenchmarkRender3Controllers1000Workers measures the AWS adapter on a rendered cluster: three
// etcd volume merges, 1,003 pointer configs and the manifest.
func BenchmarkRender3Controllers1000Workers(b *testing.B) {
	testcluster.Benchmark(b, testcluster.Spec("flatcar", awsBlock, 3, 1000, ""))
}
