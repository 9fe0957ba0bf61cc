package harness_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/harness"
)

// testSubnet is the loopback /24 testdata/cluster.hcl is written for.
const testSubnet = "127.42.0."

// renderTestCluster renders testdata/cluster.hcl into out on a loopback /24 of its own, so that
// test runs on the same host (two people, or CI beside a developer) never share addresses.
func renderTestCluster(tb testing.TB, out string) {
	tb.Helper()
	src, err := os.ReadFile("testdata/cluster.hcl")
	if err != nil {
		tb.Fatal(err)
	}
	subnet := ""
	for range 20 {
		candidate := fmt.Sprintf("127.%d.%d.", 100+rand.IntN(150), rand.IntN(256))
		// The load balancer's address being free says the /24 is not in use by another run.
		if ln, err := net.Listen("tcp", candidate+"10:6443"); err == nil {
			ln.Close()
			subnet = candidate
			break
		}
	}
	if subnet == "" {
		tb.Fatal("found no free loopback /24 for the test cluster")
	}
	spec := filepath.Join(tb.TempDir(), "cluster.hcl")
	if err := os.WriteFile(spec, []byte(strings.ReplaceAll(string(src), testSubnet, subnet)), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := harness.Render(spec, out); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("test cluster on %s0/24", subnet)
}
