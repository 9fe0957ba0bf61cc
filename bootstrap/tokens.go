package bootstrap

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/liftoff-k8s/liftoff/generator"
)

// pruneTokens deletes liftoff's bootstrap tokens that the manifests no longer hold: a rotated
// token, one of a machine or pool that left the spec, an expired one, and the token every machine
// shared before each got its own. A token is liftoff's when it grants liftoff's bootstrap group;
// other bootstrap tokens (kubeadm's, a user's) are left alone.
func (r *run) pruneTokens(ctx context.Context) error {
	keep := map[string]bool{}
	for _, o := range r.objects {
		if o.GetKind() == "Secret" && o.GetNamespace() == "kube-system" && strings.HasPrefix(o.GetName(), "bootstrap-token-") {
			keep[o.GetName()] = true
		}
	}
	secrets := r.client.CoreV1().Secrets("kube-system")
	list, err := secrets.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeBootstrapToken)).String()})
	if err != nil {
		return fmt.Errorf("listing bootstrap tokens: %w", err)
	}
	for _, s := range list.Items {
		if keep[s.Name] || !grantsGroup(s, generator.NodeBootstrapGroup) {
			continue
		}
		err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting bootstrap token %s: %w", s.Name, err)
		}
		r.emit(Event{Stage: StageManifests, Object: "Secret kube-system/" + s.Name, Result: ResultRemoved,
			Detail: "a bootstrap token of liftoff's that the manifests no longer hold"})
	}
	return nil
}

// grantsGroup reports whether a bootstrap token Secret puts its holder in group.
func grantsGroup(s corev1.Secret, group string) bool {
	for _, g := range strings.Split(string(s.Data["auth-extra-groups"])+","+s.StringData["auth-extra-groups"], ",") {
		if strings.TrimSpace(g) == group {
			return true
		}
	}
	return false
}
