package aws_test

import (
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
)

// BenchmarkRender3Controllers1000Workers measures the AWS adapter alone on a rendered cluster:
// the controllers' etcd volume merge, 1,003 pointer configs and the manifest.
func BenchmarkRender3Controllers1000Workers(b *testing.B) {
	c := testcluster.Complete(b, testcluster.Spec("flatcar", awsBlock, 3, 1000, ""))
	res, err := generator.Render(c, generator.Options{Now: testcluster.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		files, err := platforms.Render(c, res.Assets)
		if err != nil {
			b.Fatal(err)
		}
		if len(files) != 2*1003+1 {
			b.Fatalf("%d files", len(files))
		}
	}
}
