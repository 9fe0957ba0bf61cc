package harness

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// waitFor watches a list of objects and returns when check, evaluated on the whole list after
// every change, is satisfied. On ctx's end the error says what check last reported missing.
func waitFor(ctx context.Context, lw cache.ListerWatcher, obj runtime.Object, what string, check func([]any) (bool, string)) error {
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    obj,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { poke() },
			UpdateFunc: func(any, any) { poke() },
			DeleteFunc: func(any) { poke() },
		},
	})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go ctrl.RunWithContext(ctx)
	last := "nothing seen yet"
	// Conditions that depend on time (a lease's renewal) are re-checked every few seconds too.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w; still missing: %s", what, context.Cause(ctx), last)
		case <-changed:
		case <-tick.C:
		}
		if !ctrl.HasSynced() {
			continue
		}
		ok, missing := check(store.List())
		if ok {
			return nil
		}
		last = missing
	}
}

func listWatch(ctx context.Context, list func(context.Context, metav1.ListOptions) (runtime.Object, error), watchf func(context.Context, metav1.ListOptions) (watch.Interface, error), tweak func(*metav1.ListOptions)) cache.ListerWatcher {
	return &cache.ListWatch{
		ListFunc: func(o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			return list(ctx, o)
		},
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			return watchf(ctx, o)
		},
	}
}

// NodeReady reports whether a Node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitForNodes waits until every named Node exists and satisfies ok (NodeReady when nil).
func WaitForNodes(ctx context.Context, client kubernetes.Interface, names []string, ok func(*corev1.Node) bool) error {
	if ok == nil {
		ok = NodeReady
	}
	nodes := client.CoreV1().Nodes()
	lw := listWatch(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return nodes.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return nodes.Watch(ctx, o) }, func(*metav1.ListOptions) {})
	return waitFor(ctx, lw, &corev1.Node{}, fmt.Sprintf("Nodes %s", strings.Join(names, ", ")), func(objs []any) (bool, string) {
		seen := map[string]*corev1.Node{}
		for _, o := range objs {
			n := o.(*corev1.Node)
			seen[n.Name] = n
		}
		var missing []string
		for _, name := range names {
			n := seen[name]
			switch {
			case n == nil:
				missing = append(missing, name+" (not registered)")
			case !ok(n):
				missing = append(missing, name+" ("+describeNode(n)+")")
			}
		}
		return len(missing) == 0, strings.Join(missing, ", ")
	})
}

func describeNode(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return fmt.Sprintf("Ready=%s %s", c.Status, c.Reason)
		}
	}
	return "no Ready condition"
}

// WaitForPods waits until the pods in namespace matching selector satisfy check, which also says
// what is missing.
func WaitForPods(ctx context.Context, client kubernetes.Interface, namespace, selector, what string, check func([]*corev1.Pod) (bool, string)) error {
	sel, err := labels.Parse(selector)
	if err != nil {
		return err
	}
	pods := client.CoreV1().Pods(namespace)
	lw := listWatch(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return pods.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return pods.Watch(ctx, o) },
		func(o *metav1.ListOptions) { o.LabelSelector = sel.String() })
	return waitFor(ctx, lw, &corev1.Pod{}, what, func(objs []any) (bool, string) {
		var ps []*corev1.Pod
		for _, o := range objs {
			ps = append(ps, o.(*corev1.Pod))
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
		return check(ps)
	})
}

// WaitForPod waits until the named pod satisfies check.
func WaitForPod(ctx context.Context, client kubernetes.Interface, namespace, name string, check func(*corev1.Pod) (bool, string)) error {
	pods := client.CoreV1().Pods(namespace)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := listWatch(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return pods.List(ctx, o) },
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return pods.Watch(ctx, o) },
		func(o *metav1.ListOptions) { o.FieldSelector = sel })
	return waitFor(ctx, lw, &corev1.Pod{}, "pod "+namespace+"/"+name, func(objs []any) (bool, string) {
		if len(objs) == 0 {
			return false, "the pod does not exist"
		}
		return check(objs[0].(*corev1.Pod))
	})
}

// PodReady reports whether a pod's Ready condition is True.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// DescribePod summarises a pod's phase, node, readiness and containers' states for messages.
func DescribePod(p *corev1.Pod) string {
	var cs []string
	for _, s := range p.Status.ContainerStatuses {
		state := "waiting"
		switch {
		case s.State.Running != nil:
			state = "running"
		case s.State.Terminated != nil:
			state = "terminated:" + s.State.Terminated.Reason
		case s.State.Waiting != nil:
			state = "waiting:" + s.State.Waiting.Reason
		}
		cs = append(cs, fmt.Sprintf("%s=%s ready=%v restarts=%d", s.Name, state, s.Ready, s.RestartCount))
	}
	node := p.Spec.NodeName
	if node == "" {
		node = "unscheduled"
	}
	return fmt.Sprintf("%s %s on %s ready=%v [%s]", p.Name, p.Status.Phase, node, PodReady(p), strings.Join(cs, "; "))
}
