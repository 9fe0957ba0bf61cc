package render_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/ignitiontest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// TestRoleConfigURL renders the demo cluster with role_config_url, serves the render's role configs
// at that URL over HTTP, and boots a controller and a worker with the real Ignition binary: each
// fetches its role's config and comes out exactly as from the whole config of a render without
// role_config_url (the same key material). What the URL names is what Ignition fetches, and only
// that: nothing else is asked of the server.
func TestRoleConfigURL(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	roles := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.URL.Path)
		data, ok := roles[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()

	src, err := os.ReadFile("../examples/demo/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	shared := strings.Replace(string(src), `  controller "node1" {`, `  role_config_url = "`+srv.URL+`/configs/{role}.ign"
  machine_secrets {
    server = "10.0.0.2:9443"
  }
  controller "node1" {`, 1)
	c, diags := spec.Parse([]byte(shared), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := render.Cluster(full, generator.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range res.Assets.Files {
		if a.Kind == generator.KindRoleIgnition {
			roles["/configs/"+a.Role+".ign"] = a.Data
		}
	}
	if len(roles) != 2 {
		t.Fatalf("the render has %d role configs, want the controllers' and the workers'", len(roles))
	}

	dir := t.TempDir()
	if err := outdir.Write(dir, res.Assets); err != nil {
		t.Fatal(err)
	}
	existing, _, err := outdir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	whole := *full
	whole.RoleConfigURL = ""
	wholeRes, err := render.Cluster(&whole, generator.Options{Now: now, Existing: existing})
	if err != nil {
		t.Fatal(err)
	}

	for _, node := range []string{"node1", "node4"} {
		own := res.Assets.Get("ignition/" + node + ".ign").Data
		if !strings.Contains(string(own), srv.URL+"/configs/") {
			t.Fatalf("%s's config merges no role config from %s", node, srv.URL)
		}
		booted := ignitiontest.Sysroot(t)
		ignitiontest.MustApply(t, booted, own)
		want := ignitiontest.Sysroot(t)
		ignitiontest.MustApply(t, want, wholeRes.Assets.Get("ignition/"+node+".ign").Data)
		if diff := ignitiontest.Diff(t, booted, want); diff != "" {
			t.Errorf("%s: the root file system from its own config and its role's differs from the whole config's:\n%s", node, diff)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range asked {
		if p != "/configs/controller.ign" && p != "/configs/worker.ign" {
			t.Errorf("Ignition asked the server for %s", p)
		}
	}
	if len(asked) == 0 {
		t.Error("Ignition fetched no role config")
	}
}
