package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/hostagent"
)

// teardown removes the bootstrap control plane (step 4 of the pivot). It asks the host agent on
// the bootstrap node, through the record, to remove the bootstrap static pods, and waits until the
// agent has answered and the kubelet has stopped them (their mirror pods are deleted only then).
// Asking again is harmless, so an interrupted teardown is simply run again.
func (r *run) teardown(ctx context.Context) error {
	node := r.plan.bootstrapNode
	present := r.bootstrapMirrorPods()
	answer := r.agentAnswer(node)
	if len(present) == 0 && r.record.Teardown != "" && answer.Request == r.record.Teardown && answer.Error == "" {
		r.emit(Event{Stage: StageTeardown, Object: "node " + node, Result: ResultSkipped, Detail: "the bootstrap control plane is gone already: " + answer.String()})
		r.goneAt = time.Now()
		return nil
	}
	r.record.Teardown = strconv.FormatInt(time.Now().UnixNano(), 36)
	if slices.Contains(r.plan.controllers, node) {
		// Its bootstrap apiserver shares its port with the self-hosted one on that controller.
		r.record.TeardownSuccessor = node
	}
	if err := r.saveRecord(ctx); err != nil {
		return fmt.Errorf("asking the host agent on %s to remove the bootstrap control plane: %w", node, err)
	}
	r.emit(Event{Stage: StageTeardown, Object: "node " + node, Result: ResultStarted,
		Detail: fmt.Sprintf("asked the %s agent to remove %s", generator.HostAgent, strings.Join(r.plan.bootstrapPods, ", "))})
	what := "the bootstrap control plane on " + node
	err := r.waitUntil(ctx, StageTeardown, what, func() (bool, []string) {
		var missing []string
		a := r.agentAnswer(node)
		switch {
		case a.Request != r.record.Teardown:
			missing = append(missing, fmt.Sprintf("the %s pod on %s has not answered the request yet", generator.HostAgent, node))
		case a.Error != "":
			missing = append(missing, fmt.Sprintf("the %s pod on %s could not remove the bootstrap pods: %s", generator.HostAgent, node, a.Error))
		case a.Waiting != "":
			missing = append(missing, fmt.Sprintf("the %s pod on %s waits before removing the bootstrap pods: %s", generator.HostAgent, node, a.Waiting))
		}
		for _, p := range r.bootstrapMirrorPods() {
			missing = append(missing, "pod kube-system/"+p+" is still running")
		}
		return len(missing) == 0, missing
	})
	if err != nil {
		return err
	}
	r.goneAt = time.Now()
	r.emit(Event{Stage: StageTeardown, Object: what, Result: ResultDone, Detail: r.agentAnswer(node).String()})
	return nil
}

// bootstrapMirrorPods lists the bootstrap control plane's pods the API still shows.
func (r *run) bootstrapMirrorPods() []string {
	var out []string
	for _, name := range r.plan.bootstrapPods {
		if _, err := r.cluster.pods.Get(mirrorPod(name, r.plan.bootstrapNode)); err == nil {
			out = append(out, mirrorPod(name, r.plan.bootstrapNode))
		}
	}
	return out
}

func (r *run) agentAnswer(node string) hostagent.Answer {
	cm, err := r.cluster.configMaps.Get(generator.PivotRecord)
	if err != nil {
		return hostagent.Answer{}
	}
	return hostagent.ParseAnswer(cm.Data[hostagent.KeyTeardownDone+node])
}

// verify proves the result through the final endpoint: the API answers /readyz, and each leader
// lease is renewed after the bootstrap control plane was gone (so by a live process, which can only
// be a self-hosted pod), by a controller that runs a Ready pod of the component.
func (r *run) verify(ctx context.Context) error {
	err := r.waitUntil(ctx, StageVerify, "the API at "+r.config.Host, func() (bool, []string) {
		body, err := r.client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "").DoRaw(ctx)
		if err != nil {
			return false, []string{"/readyz: " + describeNotReady(err, body)}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	r.emit(Event{Stage: StageVerify, Object: r.config.Host, Result: ResultReady, Detail: "/readyz answered ok"})
	if len(r.plan.controllers) == 0 {
		return nil
	}
	since := r.goneAt
	if since.IsZero() {
		since = time.Now()
	}
	holders := map[string]string{}
	released := map[string]bool{}
	err = r.waitUntil(ctx, StageVerify, "leader leases renewed by live control-plane pods", func() (bool, []string) {
		var missing []string
		for _, name := range leaderLeases {
			u := r.cluster.lastLeaseUpdate(name)
			if !u.seen.After(since) && !r.goneAt.IsZero() && time.Since(r.goneAt) > deadHolderAfter && !released[name] {
				// Not renewed since the bootstrap pods were stopped: its holder was one of them
				// (kube-controller-manager does not release its lease when it stops). Release it
				// for the self-hosted candidates rather than wait out its duration.
				released[name] = true
				r.releaseLease(ctx, name, u)
			}
			if !u.seen.After(since) {
				missing = append(missing, fmt.Sprintf("Lease kube-system/%s has not been renewed since %s (held by %q)", name, since.Format(time.RFC3339), u.holder))
				continue
			}
			holder, err := r.holderPod(name, u.holder)
			if err != nil {
				missing = append(missing, err.Error())
				continue
			}
			holders[name] = holder
		}
		return len(missing) == 0, missing
	})
	if err != nil {
		return err
	}
	for _, name := range leaderLeases {
		r.emit(Event{Stage: StageVerify, Object: "Lease kube-system/" + name, Result: ResultReady, Detail: "held by " + holders[name]})
	}
	return nil
}

// deadHolderAfter is how long a leader lease may go unrenewed before its holder counts as gone: a
// live leader renews every two seconds (the components' retry period), so twice that and a second.
const deadHolderAfter = 5 * time.Second

// releaseLease deletes a leader lease whose holder is gone, only if it is still the version last seen.
func (r *run) releaseLease(ctx context.Context, name string, u leaseUpdate) {
	rv := u.resourceVersion
	err := r.client.CoordinationV1().Leases(metav1.NamespaceSystem).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	detail := fmt.Sprintf("held by %q, not renewed since the bootstrap control plane stopped: released for the self-hosted pods", u.holder)
	if err != nil {
		detail = fmt.Sprintf("held by %q, not renewed since the bootstrap control plane stopped; releasing it failed (%v): waiting for it to expire", u.holder, err)
	}
	r.emit(Event{Stage: StageVerify, Object: "Lease kube-system/" + name, Result: ResultReleased, Detail: detail})
}

// holderPod names the Ready pod of component on the node of a lease holder ("node_uuid").
func (r *run) holderPod(component, holder string) (string, error) {
	node, _, _ := strings.Cut(holder, "_")
	if r.plan.mode == ModeStatic {
		name := mirrorPod(component, node)
		if p, err := r.cluster.pods.Get(name); err == nil {
			if _, ok := podReadySince(p); ok {
				return "pod kube-system/" + name, nil
			}
		}
		return "", fmt.Errorf("Lease kube-system/%s is held by %q, but %s has no Ready pod %s", component, holder, node, name)
	}
	for _, p := range r.workloadPods(component) {
		if _, ok := podReadySince(p); ok && p.Spec.NodeName == node {
			return "pod kube-system/" + p.Name + " on " + node, nil
		}
	}
	return "", fmt.Errorf("Lease kube-system/%s is held by %q, but %s runs no Ready self-hosted %s pod", component, holder, node, component)
}
