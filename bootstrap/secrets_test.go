package bootstrap

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// renderSpec completes and renders c as `liftoff render` would.
func renderSpec(t *testing.T, c *spec.Cluster) *generator.Result {
	t.Helper()
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := render.Cluster(full, generator.Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// freeAddr is a 127.0.0.1 address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeSecrets renders a cluster whose machines fetch their secrets and serves them: a machine
// gets its own pack over TLS that the cluster CA vouches for, and no one else gets it.
func TestServeSecrets(t *testing.T) {
	addr := freeAddr(t)
	c, diags := spec.ReadFile("../examples/demo/cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	c.MachineSecrets = &spec.MachineSecrets{Server: addr}
	res := renderSpec(t, c)
	dir := filepath.Join(t.TempDir(), "out")
	// This test's client is node1: it calls from 127.0.0.1.
	var desc generator.SecretsServer
	server := res.Assets.Get(generator.MachineSecretsServerPath)
	if err := json.Unmarshal(server.Data, &desc); err != nil {
		t.Fatal(err)
	}
	desc.Machines["node1"] = "127.0.0.1"
	server.Data, _ = json.Marshal(desc)
	if err := outdir.Write(dir, res.Assets); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var events []string
	s, err := ServeSecrets(dir, "", func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("%s %s %s", e.Object, e.Result, e.Detail))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(res.Assets.Get("pki/ca.crt").Data)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(machine string) (int, []byte) {
		resp, err := client.Get("https://" + addr + generator.SecretsPathPrefix + machine)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	code, body := get("node1")
	if want, _ := os.ReadFile(filepath.Join(dir, generator.MachineSecretsPath("node1"))); code != http.StatusOK || string(body) != string(want) || len(want) == 0 {
		t.Errorf("node1 got %d and %d bytes, want its pack of %d bytes", code, len(body), len(want))
	}
	if code, body := get("node2"); code != http.StatusForbidden || strings.Contains(string(body), "PRIVATE KEY") {
		t.Errorf("node2's secrets asked for from another address: %d %q", code, body)
	}
	if code, _ := get("nosuch"); code != http.StatusNotFound {
		t.Errorf("a machine the render lacks: %d", code)
	}
	if got, want := strings.Join(s.Waiting(), ","), "node2,node3,node4"; got != want {
		t.Errorf("waiting for %s, want %s", got, want)
	}

	// Without the cluster CA, the server is not trusted.
	if _, err := http.Get("https://" + addr + generator.SecretsPathPrefix + "node1"); err == nil {
		t.Error("a client without the cluster CA trusted the server")
	}
	mu.Lock()
	defer mu.Unlock()
	got := strings.Join(events, "\n")
	for _, want := range []string{"machine node1 done served its secrets to 127.0.0.1", "machine node2 warning refused its secrets to 127.0.0.1: it is at 10.0.0.12"} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
}
