package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// FieldManager is the server-side apply field manager of everything bootstrap applies.
const FieldManager = "liftoff"

// applyBackoff paces retries of one object after a transient error.
var applyBackoff = wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 1 << 30, Cap: 5 * time.Second}

// apply server-side applies one object, forcing ownership of the fields it sets, and reports whether
// it was created, changed or already as rendered. Transient errors (the API restarting, timeouts,
// throttling) are retried until ctx ends; errors about the object itself fail at once.
func (r *run) apply(ctx context.Context, stage Stage, o Object) error {
	data, err := o.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s in %s: %w", o, o.Where(), err)
	}
	backoff := applyBackoff
	var lastErr error
	for {
		result, err := r.applyOnce(ctx, o, data)
		if err == nil {
			r.emit(Event{Stage: stage, File: o.File, Object: o.String(), Result: result})
			return nil
		}
		if permanent(err) {
			r.emit(Event{Stage: stage, File: o.File, Object: o.String(), Result: ResultFailed, Detail: err.Error()})
			return fmt.Errorf("%s in %s: %w", o, o.Where(), err)
		}
		if lastErr == nil || lastErr.Error() != err.Error() {
			r.emit(Event{Stage: stage, File: o.File, Object: o.String(), Result: ResultRetrying, Detail: err.Error()})
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s in %s was not applied before the deadline; last error: %w", o, o.Where(), lastErr)
		case <-time.After(backoff.Step()):
		}
	}
}

// errNotServed marks a kind the API does not serve, which retrying cannot fix.
var errNotServed = errors.New("kind not served")

func (r *run) applyOnce(ctx context.Context, o Object, data []byte) (string, error) {
	res, err := r.resource(o)
	if err != nil {
		return "", err
	}
	before, err := res.Get(ctx, o.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		return "", err
	}
	force := true
	after, err := res.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager:    FieldManager,
		Force:           &force,
		FieldValidation: metav1.FieldValidationStrict,
	})
	if err != nil {
		return "", err
	}
	switch {
	case before == nil:
		return ResultCreated, nil
	case before.GetResourceVersion() == after.GetResourceVersion() || sameContent(before, after):
		return ResultUnchanged, nil
	}
	return ResultConfigured, nil
}

// sameContent reports whether two versions of an object differ only in bookkeeping: an apply
// can move the ownership of a field the server defaulted (a Namespace's name label) without
// changing anything else.
func sameContent(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(c.Object, "metadata", "generation")
		return c.Object
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

// resource finds the API resource of an object, refreshing discovery once when the kind is unknown
// (a CRD applied a moment ago).
func (r *run) resource(o Object) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	mapping, err := r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		r.mapper.Reset()
		mapping, err = r.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%w: the API serves no %s in %s (a missing CustomResourceDefinition or a wrong apiVersion?)", errNotServed, gvk.Kind, gvk.GroupVersion())
	}
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		if o.GetNamespace() != "" {
			return nil, fmt.Errorf("%w: %s is cluster-scoped but has metadata.namespace %q", errNotServed, gvk.Kind, o.GetNamespace())
		}
		return r.dynamic.Resource(mapping.Resource), nil
	}
	if o.GetNamespace() == "" {
		o.SetNamespace(metav1.NamespaceDefault)
	}
	return r.dynamic.Resource(mapping.Resource).Namespace(o.GetNamespace()), nil
}

// permanent reports whether err is about the object or the request rather than the API's state, so
// that retrying would only hide it.
func permanent(err error) bool {
	switch {
	case errors.Is(err, errNotServed):
		return true
	case apierrors.IsForbidden(err):
		// The namespace admission plugin refuses requests until its cache has synced.
		return !strings.Contains(err.Error(), "not yet ready to handle request")
	case apierrors.IsInternalError(err):
		// Server-side apply reports an object that does not fit its type's schema this way.
		return strings.Contains(err.Error(), "failed to create typed patch object")
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsNotFound(err),
		apierrors.IsUnauthorized(err), apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		return true
	}
	return false
}
