package harness_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/liftoff-k8s/liftoff/harness"
)

// testSubnet is the /24 testdata/cluster.hcl is written for.
const testSubnet = "10.42.0."

// renderTestCluster renders testdata/cluster.hcl into out on a /24 of its own that no address or
// route of this host covers, so that test runs on the same host (two people, or CI beside a
// developer) never share addresses.
func renderTestCluster(tb testing.TB, out string) {
	tb.Helper()
	renderTestClusterOf(tb, out, nil)
}

// renderTestClusterOf is renderTestCluster with the spec's text changed by edit first.
func renderTestClusterOf(tb testing.TB, out string, edit func(string) string) {
	tb.Helper()
	src, err := os.ReadFile("testdata/cluster.hcl")
	if err != nil {
		tb.Fatal(err)
	}
	prefix, err := harness.FreeSubnet()
	if err != nil {
		tb.Fatal(err)
	}
	subnet := strings.TrimSuffix(prefix.Addr().String(), "0")
	text := strings.ReplaceAll(string(src), testSubnet, subnet)
	if edit != nil {
		text = edit(text)
	}
	spec := specBeside(out)
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := harness.Render(tb.Context(), spec, out); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("test cluster on %s", prefix)
}

// fetchingSecrets makes the test cluster's machines fetch their secrets (machine_secrets.server)
// from liftoff on the cluster network's gateway, an address of this host that every machine reaches.
func fetchingSecrets(src string) string {
	m := regexp.MustCompile(`api_server\s*=\s*"https://(\d+\.\d+\.\d+)\.\d+:\d+"`).FindStringSubmatch(src)
	if m == nil {
		panic("the test cluster's api_server is not an IP address")
	}
	return strings.Replace(src, `  controller "`, "  machine_secrets {\n    server = \""+m[1]+".1:10443\"\n  }\n  controller \"", 1)
}

// specBeside is where renderTestClusterOf keeps the spec it rendered into out, for re-renders.
func specBeside(out string) string { return filepath.Join(filepath.Dir(out), "cluster.hcl") }

func gunzip(tb testing.TB, data []byte) []byte {
	tb.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
