package bootstrap

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitForCRDs watches each applied CRD until the API reports it Established (its names accepted
// and its resource served).
func (r *run) waitForCRDs(ctx context.Context) error {
	for _, o := range r.objects {
		if !o.isCRD() {
			continue
		}
		if err := r.waitForCRD(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) waitForCRD(ctx context.Context, o Object) error {
	name := o.GetName()
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	client := r.dynamic.Resource(crdResource)
	lw := &cache.ListWatch{
		ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = sel
			return client.List(ctx, opts)
		},
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = sel
			return client.Watch(ctx, opts)
		},
	}
	r.emit(Event{Stage: StageCRDs, File: o.File, Object: o.String(), Result: ResultWaiting, Detail: "until Established"})
	last := "not seen yet"
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(e watch.Event) (bool, error) {
		u, ok := e.Object.(*unstructured.Unstructured)
		if !ok || e.Type == watch.Deleted {
			return false, nil
		}
		established, summary := crdConditions(u)
		last = summary
		return established, nil
	})
	if err != nil {
		return fmt.Errorf("%s in %s is not served: its conditions are %s: %w", o, o.Where(), last, err)
	}
	r.emit(Event{Stage: StageCRDs, File: o.File, Object: o.String(), Result: ResultReady, Detail: "Established"})
	return nil
}

// crdConditions reports whether a CRD is Established and summarises its conditions for errors.
func crdConditions(u *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	established := false
	var parts []string
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		t, _ := m["type"].(string)
		s, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		if t == "Established" && s == "True" {
			established = true
		}
		part := t + "=" + s
		if msg != "" && s != "True" {
			part += " (" + msg + ")"
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return false, "none yet"
	}
	return established, strings.Join(parts, ", ")
}
