package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liftoff-k8s/liftoff/generator"
)

// placeNodes puts liftoff's placement labels on the Nodes of the machines the render names: the
// controllers' and the bootstrap machine's. Their kubelets cannot set these labels (NodeRestriction),
// so no other machine can draw the pods that hold control-plane credentials to itself. A machine
// whose Node has not registered yet is labelled by a later call. It reads the Nodes from the run's
// watch, so calling it on every change costs no request until there is a label to put.
func (r *run) placeNodes(ctx context.Context, st Stage) error {
	want := map[string]string{}
	for _, c := range r.plan.controllers {
		want[c] = generator.PlacementController
	}
	if r.plan.bootstrapMachine != "" {
		want[r.plan.bootstrapMachine] = generator.PlacementBootstrap
	}
	for name, label := range want {
		node, err := r.cluster.nodes.Get(name)
		if err != nil || node.Labels[label] == "true" {
			continue // not registered yet, or labelled
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{label: "true"}}})
		if _, err := r.client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("labelling Node %s %s: %w", name, label, err)
		}
		r.emit(Event{Stage: st, Object: "Node " + name, Result: ResultConfigured, Detail: "labelled " + label})
	}
	return nil
}
