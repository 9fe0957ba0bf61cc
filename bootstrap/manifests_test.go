package bootstrap

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/liftoff-k8s/liftoff/generator"
)

func TestManifests(t *testing.T) {
	assets := &generator.Assets{Files: []generator.Asset{
		{Path: "manifests/20-b.yaml", Kind: generator.KindManifest, Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: x\n")},
		{Path: "manifests/00-token.yaml", Kind: generator.KindBootstrapToken, Data: []byte("apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\n  namespace: kube-system\n")},
		{Path: "manifests/10-a.yaml", Kind: generator.KindManifest, Data: []byte(`# leading comment
---
# a document of comments only
---
apiVersion: v1
kind: Namespace
metadata:
  name: x
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: sa
    namespace: x
---
`)},
		{Path: "pki/ca.crt", Kind: generator.KindCertificate, Data: []byte("not a manifest")},
		{Path: "static-pods/n1/kube-apiserver.yaml", Kind: generator.KindStaticPod, Data: []byte("apiVersion: v1\nkind: Pod\n")},
	}}
	objs, err := Manifests(assets)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, fmt.Sprintf("%s#%d %s", o.File, o.Doc, o))
	}
	want := []string{
		"manifests/00-token.yaml#1 Secret kube-system/token",
		"manifests/10-a.yaml#3 Namespace x",
		"manifests/10-a.yaml#4 ServiceAccount x/sa",
		"manifests/20-b.yaml#1 ConfigMap x/b",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Manifests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestManifestsRejects(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"no kind", "apiVersion: v1\nmetadata:\n  name: a\n", "manifests/10-x.yaml (document 1): object has no kind"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ConfigMap has no metadata.name"},
		{"generateName", "apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: p-\n", "cannot be applied idempotently"},
		{"not YAML", "apiVersion: v1\nkind: [\n", "manifests/10-x.yaml (document 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Manifests(&generator.Assets{Files: []generator.Asset{{Path: "manifests/10-x.yaml", Kind: generator.KindManifest, Data: []byte(tc.doc)}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPermanent(t *testing.T) {
	gr := schema.GroupResource{Resource: "configmaps"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "x", nil), true},
		{apierrors.NewBadRequest("unknown field"), true},
		{apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "nope"), true},
		{apierrors.NewForbidden(gr, "x", errors.New("denied by a webhook")), true},
		{apierrors.NewForbidden(gr, "x", errors.New("not yet ready to handle request")), false},
		{apierrors.NewServiceUnavailable("starting"), false},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{apierrors.NewInternalError(errors.New("etcd leader changed")), false},
		{apierrors.NewInternalError(errors.New("failed to create typed patch object (x/y; /v1, Kind=ConfigMap): .spec: field not declared in schema")), true},
		{apierrors.NewTimeoutError("timeout", 1), false},
		{errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), false},
		{fmt.Errorf("%w: no Widget", errNotServed), true},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestParseStage(t *testing.T) {
	for _, st := range Stages() {
		got, err := ParseStage(string(st))
		if err != nil || got != st {
			t.Errorf("ParseStage(%q) = %q, %v", st, got, err)
		}
	}
	if _, err := ParseStage("pivot"); err == nil || !strings.Contains(err.Error(), "wait-for-api, namespaces, crds, manifests") {
		t.Errorf("ParseStage(pivot) = %v; want an error listing the stages", err)
	}
}
