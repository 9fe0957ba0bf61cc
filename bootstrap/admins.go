package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-k8s/liftoff/generator"
)

// SuperAdminKubeconfig is the break-glass credential (system:masters), relative to the output
// directory. Bootstrap uses it for one request only: creating the admins' binding.
var SuperAdminKubeconfig = filepath.Join(generator.OutAuthDir, "super-admin.conf")

var clusterRoleBindings = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}

// ensureAdmins makes sure the admin credential has its rights before anything else is done with
// it: they come from the ClusterRoleBinding the render holds for the admins' group, not from
// system:masters. When the run's credential may not read that binding (it does not exist yet, so
// the admin has no rights), it is applied with the break-glass credential from the output
// directory. A credential that may read it and finds none creates it with the other manifests.
func (r *run) ensureAdmins(ctx context.Context) error {
	if r.superAdmin == "" {
		return nil
	}
	var binding *Object
	for i, o := range r.objects {
		if o.GetKind() == "ClusterRoleBinding" && o.GetName() == generator.UserAdminGroup {
			binding = &r.objects[i]
		}
	}
	if binding == nil {
		return nil
	}
	_, err := r.dynamic.Resource(clusterRoleBindings).Get(ctx, binding.GetName(), metav1.GetOptions{})
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	if !apierrors.IsForbidden(err) {
		return fmt.Errorf("reading %s: %w", binding, err)
	}
	if _, statErr := os.Stat(r.superAdmin); statErr != nil {
		return fmt.Errorf("the admin credential has no rights yet (%v) and the break-glass credential %s to grant them is missing: %w", err, r.superAdmin, statErr)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", r.superAdmin)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", r.superAdmin, err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "liftoff-bootstrap"
	cfg.Timeout = 30 * time.Second
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	backoff := applyBackoff
	for {
		_, err = client.Resource(clusterRoleBindings).Apply(ctx, binding.GetName(), binding.Unstructured, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err == nil {
			r.emit(Event{Stage: StageWaitAPI, File: binding.File, Object: binding.String(), Result: ResultCreated,
				Detail: "the admins' binding, created with the break-glass credential"})
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("%s in %s: %w", binding, binding.Where(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s was not applied before the deadline: %w", binding, err)
		case <-time.After(backoff.Step()):
		}
	}
}
