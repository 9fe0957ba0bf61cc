package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	coordinationlisters "k8s.io/client-go/listers/coordination/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// progressEvery is the longest a wait stays silent: a line at least this often, so that a wait
// on something that does not change is never mistaken for a hang.
const progressEvery = 10 * time.Second

// cluster watches what the pivot waits on, through informers: nodes, and in kube-system pods,
// workloads, leases and the record's ConfigMap. Every change wakes the waiting stage.
type cluster struct {
	factory     informers.SharedInformerFactory
	nodes       corelisters.NodeLister
	pods        corelisters.PodNamespaceLister
	daemonSets  appslisters.DaemonSetNamespaceLister
	deployments appslisters.DeploymentNamespaceLister
	leases      coordinationlisters.LeaseNamespaceLister
	configMaps  corelisters.ConfigMapNamespaceLister
	changed     chan struct{}

	mu sync.Mutex
	// leaseUpdates are when each leader lease was last seen changing, and by whom.
	leaseUpdates map[string]leaseUpdate
}

type leaseUpdate struct {
	seen            time.Time
	holder          string
	resourceVersion string
}

// watchCluster starts the watches, which last as long as life, and waits until they have synced or ctx ends.
func watchCluster(ctx, life context.Context, client kubernetes.Interface) (*cluster, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(metav1.NamespaceSystem))
	nodes := informers.NewSharedInformerFactory(client, 0)
	c := &cluster{
		factory:      f,
		nodes:        nodes.Core().V1().Nodes().Lister(),
		pods:         f.Core().V1().Pods().Lister().Pods(metav1.NamespaceSystem),
		daemonSets:   f.Apps().V1().DaemonSets().Lister().DaemonSets(metav1.NamespaceSystem),
		deployments:  f.Apps().V1().Deployments().Lister().Deployments(metav1.NamespaceSystem),
		leases:       f.Coordination().V1().Leases().Lister().Leases(metav1.NamespaceSystem),
		configMaps:   f.Core().V1().ConfigMaps().Lister().ConfigMaps(metav1.NamespaceSystem),
		changed:      make(chan struct{}, 1),
		leaseUpdates: map[string]leaseUpdate{},
	}
	wake := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.wake() },
		UpdateFunc: func(_, _ any) { c.wake() },
		DeleteFunc: func(any) { c.wake() },
	}
	for _, inf := range []cache.SharedIndexInformer{
		nodes.Core().V1().Nodes().Informer(), f.Core().V1().Pods().Informer(), f.Apps().V1().DaemonSets().Informer(),
		f.Apps().V1().Deployments().Informer(), f.Core().V1().ConfigMaps().Informer(),
	} {
		if _, err := inf.AddEventHandler(wake); err != nil {
			return nil, err
		}
	}
	leaseSeen := func(obj any) {
		if l, ok := obj.(*coordinationv1.Lease); ok {
			c.leaseSeen(l)
		}
		c.wake()
	}
	if _, err := f.Coordination().V1().Leases().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: leaseSeen, UpdateFunc: func(_, obj any) { leaseSeen(obj) },
	}); err != nil {
		return nil, err
	}
	f.Start(life.Done())
	nodes.Start(life.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("watching %v in kube-system: %w", typ, context.Cause(ctx))
		}
	}
	for typ, ok := range nodes.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("watching %v: %w", typ, context.Cause(ctx))
		}
	}
	return c, nil
}

func (c *cluster) wake() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *cluster) leaseSeen(l *coordinationv1.Lease) {
	now := time.Now()
	holder := ""
	if l.Spec.HolderIdentity != nil {
		holder = *l.Spec.HolderIdentity
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaseUpdates[l.Name] = leaseUpdate{seen: now, holder: holder, resourceVersion: l.ResourceVersion}
}

func (c *cluster) lastLeaseUpdate(name string) leaseUpdate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaseUpdates[name]
}

// waitUntil evaluates check whenever the cluster changes, and at least every progressEvery,
// until it reports done or ctx ends. It reports what is missing when that changes, and again every
// progressEvery while nothing does. On timeout the error lists what was still missing.
func (r *run) waitUntil(ctx context.Context, st Stage, what string, check func() (done bool, missing []string)) error {
	last := ""
	lastEmit := time.Time{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		done, missing := check()
		if done {
			return nil
		}
		detail := strings.Join(missing, "; ")
		if detail != last || time.Since(lastEmit) >= progressEvery {
			r.emit(Event{Stage: st, Object: what, Result: ResultWaiting, Detail: detail})
			last, lastEmit = detail, time.Now()
		}
		select {
		case <-ctx.Done():
			return &missingError{what: what, missing: missing, cause: context.Cause(ctx)}
		case <-r.cluster.changed:
		case <-tick.C:
		}
	}
}

// missingError is a wait that ended with things still missing.
type missingError struct {
	what    string
	missing []string
	cause   error
}

func (e *missingError) Error() string {
	msg := fmt.Sprintf("%s: still missing:\n  - %s", e.what, strings.Join(e.missing, "\n  - "))
	if e.cause != nil {
		msg = e.cause.Error() + "; " + msg
	}
	return msg
}

func (e *missingError) Unwrap() error { return e.cause }
