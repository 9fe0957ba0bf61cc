package bootstrap

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/liftoff-k8s/liftoff/generator"
)

// The control-plane components and the workloads of a self-hosted control plane.
var (
	controlPlaneComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	// selfHostedDaemonSets run one pod on every controller; selfHostedDeployments have one
	// replica per controller, of which one leads.
	selfHostedDaemonSets  = []string{"kube-apiserver", generator.HostAgent}
	selfHostedDeployments = []string{"kube-controller-manager", "kube-scheduler"}
	// leaderLeases are the leader election leases of the components that elect one.
	leaderLeases = []string{"kube-controller-manager", "kube-scheduler"}
)

// waitForControlPlane waits until every controller Node is Ready and every control-plane pod the
// cluster requires is Ready: in a static cluster the static pods on every controller; in a
// self-hosted one every replica of its workloads, including the host agent, and, where the
// bootstrap apiserver shares its port, proof that its successor serves. It records when the last
// of them became Ready, as the API reports it.
func (r *run) waitForControlPlane(ctx context.Context) error {
	if len(r.plan.controllers) == 0 {
		r.emit(Event{Stage: StageControlPlane, Result: ResultSkipped, Detail: "the render names no controllers"})
		return nil
	}
	what := fmt.Sprintf("the %s control plane on %s", r.plan.mode, strings.Join(r.plan.controllers, ", "))
	return r.waitUntil(ctx, StageControlPlane, what, func() (bool, []string) {
		// Controllers that register now get their placement labels as they come.
		if err := r.placeNodes(ctx, StageControlPlane); err != nil {
			return false, []string{err.Error()}
		}
		missing, readyAt := r.controlPlaneMissing()
		if len(missing) == 0 {
			r.report.ControlPlaneReady = readyAt
			r.emit(Event{Stage: StageControlPlane, Object: what, Result: ResultReady,
				Detail: "the last became Ready at " + readyAt.Format(time.RFC3339)})
		}
		return len(missing) == 0, missing
	})
}

// controlPlaneMissing lists what is not Ready yet, and when the last required thing that is became
// Ready.
func (r *run) controlPlaneMissing() ([]string, time.Time) {
	var missing []string
	var readyAt time.Time
	ready := func(t time.Time) {
		if t.After(readyAt) {
			readyAt = t
		}
	}
	for _, name := range r.plan.controllers {
		node, err := r.cluster.nodes.Get(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("Node %s has not registered (is its kubelet running and able to reach the API?)", name))
			continue
		}
		cond := nodeCondition(node, corev1.NodeReady)
		if cond == nil || cond.Status != corev1.ConditionTrue {
			missing = append(missing, describeNode(node))
			continue
		}
		ready(cond.LastTransitionTime.Time)
	}
	switch r.plan.mode {
	case ModeStatic:
		for _, node := range r.plan.controllers {
			for _, c := range controlPlaneComponents {
				name := mirrorPod(c, node)
				pod, err := r.cluster.pods.Get(name)
				if err != nil {
					missing = append(missing, fmt.Sprintf("pod %s does not exist: the kubelet on %s has not started its static pod %s", name, node, c))
					continue
				}
				if t, ok := podReadySince(pod); ok {
					ready(t)
				} else {
					missing = append(missing, describePod(pod))
				}
			}
		}
	case ModeSelfHosted:
		for _, ds := range selfHostedDaemonSets {
			missing = append(missing, r.daemonSetMissing(ds, ready)...)
		}
		for _, d := range selfHostedDeployments {
			missing = append(missing, r.deploymentMissing(d, ready)...)
		}
	}
	return missing, readyAt
}

// workloadPods are the live pods of a self-hosted workload (label k8s-app=name), by node.
func (r *run) workloadPods(name string) []*corev1.Pod {
	pods, _ := r.cluster.pods.List(labels.SelectorFromSet(labels.Set{"k8s-app": name}))
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil && !isMirror(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *run) daemonSetMissing(name string, ready func(time.Time)) []string {
	if _, err := r.cluster.daemonSets.Get(name); err != nil {
		return []string{fmt.Sprintf("DaemonSet kube-system/%s does not exist", name)}
	}
	pods := r.workloadPods(name)
	var missing []string
	nodes := r.plan.controllers
	if name == generator.HostAgent && r.plan.bootstrapMachine != "" && len(r.bootstrapMirrorPods()) > 0 {
		// The agent on the bootstrap machine removes the bootstrap control plane there.
		nodes = append(append([]string{}, nodes...), r.plan.bootstrapMachine)
	}
	for _, node := range nodes {
		var onNode []*corev1.Pod
		found := false
		for _, p := range pods {
			if p.Spec.NodeName != node {
				continue
			}
			onNode = append(onNode, p)
			if t, ok := podReadySince(p); ok && r.stale(p) == "" {
				ready(t)
				found = true
			}
		}
		switch {
		case found:
		case len(onNode) == 0:
			missing = append(missing, fmt.Sprintf("DaemonSet kube-system/%s has no pod on %s yet", name, node))
		default:
			for _, p := range onNode {
				if why := r.stale(p); why != "" {
					missing = append(missing, why)
					continue
				}
				missing = append(missing, describePod(p))
			}
		}
	}
	return missing
}

func (r *run) deploymentMissing(name string, ready func(time.Time)) []string {
	d, err := r.cluster.deployments.Get(name)
	if err != nil {
		return []string{fmt.Sprintf("Deployment kube-system/%s does not exist", name)}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	var missing []string
	readyPods := int32(0)
	var readySince []time.Time
	for _, p := range r.workloadPods(name) {
		t, ok := podReadySince(p)
		switch why := r.stale(p); {
		case ok && why == "":
			readySince = append(readySince, t)
			readyPods++
		case ok:
			missing = append(missing, why)
		default:
			missing = append(missing, describePod(p))
		}
	}
	// Surplus pods still starting or terminating do not hold the pivot up once every replica is Ready.
	if readyPods >= want && deploymentRolledOut(d, want) {
		for _, t := range readySince {
			ready(t)
		}
		return nil
	}
	return append(missing, fmt.Sprintf("Deployment kube-system/%s has %d of %d replicas Ready and up to date", name, readyPods, want))
}

func deploymentRolledOut(d *appsv1.Deployment, want int32) bool {
	return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= want && d.Status.ReadyReplicas >= want
}

func isMirror(p *corev1.Pod) bool {
	_, ok := p.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// podReadySince reports whether the pod is Ready, and since when.
func podReadySince(p *corev1.Pod) (time.Time, bool) {
	c := podCondition(p, corev1.PodReady)
	if p.DeletionTimestamp != nil || c == nil || c.Status != corev1.ConditionTrue {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Time, true
}

// describeNode says why a node is not Ready.
func describeNode(n *corev1.Node) string {
	c := nodeCondition(n, corev1.NodeReady)
	if c == nil {
		return fmt.Sprintf("Node %s has reported no Ready condition yet", n.Name)
	}
	return fmt.Sprintf("Node %s is NotReady since %s: %s %s", n.Name, c.LastTransitionTime.Format(time.RFC3339), c.Reason, c.Message)
}

// describePod says why a pod is not Ready, in the words that point at the cause: not scheduled
// and why, an image that cannot be pulled, a container crash-looping with its exit, a failing probe.
func describePod(p *corev1.Pod) string {
	where := p.Spec.NodeName
	if where == "" {
		where = "no node"
	}
	head := fmt.Sprintf("pod kube-system/%s on %s", p.Name, where)
	if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status != corev1.ConditionTrue {
		return fmt.Sprintf("%s is not scheduled: %s %s", head, c.Reason, c.Message)
	}
	var parts []string
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Ready {
			continue
		}
		s := "container " + cs.Name
		switch {
		case cs.State.Waiting != nil:
			s += " waiting: " + cs.State.Waiting.Reason
			if m := cs.State.Waiting.Message; m != "" {
				s += " (" + firstLine(m) + ")"
			}
		case cs.State.Running != nil:
			s += " running since " + cs.State.Running.StartedAt.Format(time.RFC3339) + " but not Ready (its probe fails)"
		case cs.State.Terminated != nil:
			s += fmt.Sprintf(" exited %d (%s)", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
		if cs.RestartCount > 0 {
			s += fmt.Sprintf(", %d restarts", cs.RestartCount)
			if t := cs.LastTerminationState.Terminated; t != nil {
				s += fmt.Sprintf(", last exit %d (%s) at %s", t.ExitCode, t.Reason, t.FinishedAt.Format(time.RFC3339))
			}
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		if c := podCondition(p, corev1.PodReady); c != nil {
			parts = append(parts, fmt.Sprintf("Ready=%s %s %s", c.Status, c.Reason, c.Message))
		} else {
			parts = append(parts, "phase "+string(p.Status.Phase))
		}
	}
	return head + ": " + strings.Join(parts, "; ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
