package bootstrap

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// writeOutput writes an output directory holding the given manifests.
func writeOutput(t *testing.T, dir string, manifests map[string]string) {
	t.Helper()
	assets := &generator.Assets{Cluster: "test"}
	for p, data := range manifests {
		assets.Add(generator.Asset{Path: p, Kind: generator.KindManifest, Mode: 0o644, Data: []byte(data)})
	}
	assets.Sort()
	if err := outdir.Write(dir, assets); err != nil {
		t.Fatal(err)
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`

// manifests use a namespace and a custom resource before the files that define them, which only
// works if bootstrap applies namespaces and CRDs first.
func manifests(size int) map[string]string {
	return map[string]string{
		"manifests/10-app.yaml": fmt.Sprintf(`apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: team-a
spec:
  size: %d
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: team-a
data:
  size: "%d"
`, size, size),
		"manifests/20-namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
		"manifests/30-crd.yaml":       widgetCRD,
	}
}

func TestRunAgainstRealAPI(t *testing.T) {
	cfg := apiservertest.Start(t)
	dir := filepath.Join(t.TempDir(), "out")
	writeOutput(t, dir, manifests(1))
	run := func(t *testing.T, opts Options) ([]Event, error) {
		var events []Event
		opts.Dir, opts.Config = dir, cfg
		opts.Progress = func(e Event) {
			events = append(events, e)
			t.Logf("%s %s %s %s %s", e.Stage, e.File, e.Object, e.Result, e.Detail)
		}
		if opts.Timeout == 0 {
			opts.Timeout = 3 * time.Minute
		}
		_, err := Run(t.Context(), opts)
		return events, err
	}
	results := func(events []Event) string {
		var out []string
		for _, e := range events {
			if e.Object != "" && e.File != "" && e.Result != ResultWaiting && e.Result != ResultRetrying {
				out = append(out, fmt.Sprintf("%s %s %s", e.Stage, e.Object, e.Result))
			}
		}
		return strings.Join(out, "\n")
	}

	t.Run("first", func(t *testing.T) {
		events, err := run(t, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join([]string{
			"namespaces Namespace team-a created",
			"crds CustomResourceDefinition widgets.example.com created",
			"crds CustomResourceDefinition widgets.example.com ready",
			"manifests Widget team-a/w created",
			"manifests ConfigMap team-a/settings created",
		}, "\n")
		if got := results(events); got != want {
			t.Errorf("first run:\n%s\nwant:\n%s", got, want)
		}
	})

	t.Run("record", func(t *testing.T) {
		rec, err := ReadRecord(t.Context(), kubernetes.NewForConfigOrDie(cfg))
		if err != nil || rec == nil {
			t.Fatalf("record %v, err %v", rec, err)
		}
		if rec.Status != StatusComplete || rec.Completed == nil || rec.Mode != ModeStatic || !strings.HasPrefix(rec.Manifests, "sha256:") {
			t.Errorf("record: status %q completed %v mode %q manifests %q", rec.Status, rec.Completed, rec.Mode, rec.Manifests)
		}
		var stages []string
		for _, s := range rec.Stages {
			stages = append(stages, string(s.Stage)+" "+s.Result)
			if s.End == nil || s.End.Before(s.Start) {
				t.Errorf("stage %s: start %v end %v", s.Stage, s.Start, s.End)
			}
		}
		want := "wait-for-api done, namespaces done, crds done, manifests done, control-plane done, verify done"
		if got := strings.Join(stages, ", "); got != want {
			t.Errorf("recorded stages: %s\nwant: %s", got, want)
		}
		if rec.Handover == nil || rec.Handover.Requests == 0 || rec.Handover.Failed != 0 {
			t.Errorf("recorded hand-over: %+v", rec.Handover)
		}
	})

	t.Run("again", func(t *testing.T) {
		events, err := run(t, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := results(events); got != "" {
			t.Errorf("a run on a bootstrapped cluster did something:\n%s", got)
		}
		said := false
		for _, e := range events {
			said = said || (e.Result == ResultSkipped && strings.Contains(e.Detail, "nothing to do"))
		}
		if !said {
			t.Error("a run on a bootstrapped cluster did not say that it had nothing to do")
		}
	})

	t.Run("changed", func(t *testing.T) {
		writeOutput(t, dir, manifests(2))
		events, err := run(t, Options{From: StageManifests})
		if err != nil {
			t.Fatal(err)
		}
		want := "manifests Widget team-a/w configured\nmanifests ConfigMap team-a/settings configured"
		if got := results(events); got != want {
			t.Errorf("resumed run:\n%s\nwant:\n%s", got, want)
		}
		w, err := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}).
			Namespace("team-a").Get(t.Context(), "w", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if size := w.Object["spec"].(map[string]any)["size"]; size != int64(2) {
			t.Errorf("widget size = %v, want 2", size)
		}
		if m := w.GetManagedFields(); len(m) != 1 || m[0].Manager != FieldManager {
			t.Errorf("widget managed fields: %+v, want one entry for %q", m, FieldManager)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		m := manifests(2)
		m["manifests/40-bad.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  namespace: team-a\ndata:\n  a: b\nspec:\n  unknown: true\n"
		writeOutput(t, dir, m)
		begin := time.Now()
		_, err := run(t, Options{})
		if err == nil || !strings.Contains(err.Error(), "ConfigMap team-a/bad in manifests/40-bad.yaml (document 1)") || !strings.Contains(err.Error(), "spec") {
			t.Errorf("error = %v; want one naming the object, its file and the bad field", err)
		}
		if d := time.Since(begin); d > 20*time.Second {
			t.Errorf("an invalid object took %s to fail; it must not be retried", d)
		}
	})
}

func TestRunExplainsTimeout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	writeOutput(t, dir, manifests(1))
	addr := apiservertest.FreeLoopback(t)
	cfg := &rest.Config{Host: "https://" + addr + ":6443", BearerToken: "x", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	begin := time.Now()
	_, err := Run(context.Background(), Options{Dir: dir, Config: cfg, Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("no error without an API")
	}
	for _, want := range []string{"within 2s", "stage wait-for-api", "https://" + addr + ":6443 was not ready", "connection refused", "--from wait-for-api"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("a 2s timeout took %s", d)
	}
}
