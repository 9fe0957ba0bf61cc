package vagrant_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

// BenchmarkRender3Controllers1000Workers measures the Vagrant adapter on a rendered cluster: 1,003
// configs with their private networks and one Vagrantfile.
func BenchmarkRender3Controllers1000Workers(b *testing.B) {
	testcluster.Benchmark(b, testcluster.Spec("flatcar", `platform "vagrant" {}`, 3, 1000, `host_cidrs = ["10.0.0.0/16"]`))
}
