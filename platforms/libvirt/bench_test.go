package libvirt_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

// BenchmarkRender3Controllers1000Workers measures the whole render of a libvirt cluster: 1,003
// domains and configs, the network and the script.
func BenchmarkRender3Controllers1000Workers(b *testing.B) {
	testcluster.Benchmark(b, testcluster.Spec("flatcar", `platform "libvirt" {
    image = "/var/lib/libvirt/images/flatcar_production_qemu_image.img"
  }`, 3, 1000, `host_cidrs = ["10.0.0.0/16"]`))
}
