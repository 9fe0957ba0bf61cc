package csrapprover

import (
	"context"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certificateslisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// Options configure Run.
type Options struct {
	// Config reaches the API as the approver's service account.
	Config *rest.Config
	// LeaseNamespace and LeaseName name the Lease replicas elect their leader with; only the
	// leader decides.
	LeaseNamespace, LeaseName string
	// Identity tells this replica from the others in the Lease; it must be unique among them.
	Identity string
}

// Leader election timing: client-go's and kube-controller-manager's defaults.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// Run decides kubelet-serving requests until ctx ends, while this replica holds the Lease. It
// returns nil when ctx ends, and an error when the replica loses the Lease while ctx is live, so that
// the process exits and its restart competes for the Lease afresh.
func Run(ctx context.Context, opts Options) error {
	if opts.Config == nil || opts.LeaseNamespace == "" || opts.LeaseName == "" || opts.Identity == "" {
		return errors.New("csrapprover: Config, LeaseNamespace, LeaseName and Identity are required")
	}
	cfg := rest.CopyConfig(opts.Config)
	cfg.UserAgent = "liftoff-kubelet-serving-approver"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("csrapprover: %w", err)
	}
	log := klog.FromContext(ctx).WithValues("lease", opts.LeaseNamespace+"/"+opts.LeaseName, "identity", opts.Identity)

	// The elector starts the leader's callback on a goroutine of its own; the work runs here
	// instead, so that it has ended when Run returns.
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: opts.LeaseNamespace, Name: opts.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
		},
		Name:            opts.LeaseName,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) { leading <- ctx },
			OnStoppedLeading: func() {},
			OnNewLeader:      func(identity string) { log.Info("Leader elected", "leader", identity) },
		},
	})
	if err != nil {
		return fmt.Errorf("csrapprover: %w", err)
	}
	electing, stopElecting := context.WithCancel(ctx)
	defer stopElecting()
	elected := make(chan struct{})
	go func() {
		defer close(elected)
		elector.Run(electing)
	}()
	log.Info("Waiting to lead")
	var runErr error
	select {
	case leaderCtx := <-leading:
		log.Info("Leading: deciding kubelet serving certificate requests")
		runErr = newController(client).run(klog.NewContext(leaderCtx, log))
		// Hand the Lease back when the work stopped on its own.
		stopElecting()
		<-elected
	case <-elected:
	}
	if ctx.Err() != nil {
		return nil
	}
	if runErr != nil {
		return fmt.Errorf("csrapprover: %w", runErr)
	}
	return fmt.Errorf("csrapprover: lost the Lease %s/%s; exiting so that a fresh start competes for it again", opts.LeaseNamespace, opts.LeaseName)
}

// controller decides each pending kubelet-serving request once.
type controller struct {
	client kubernetes.Interface
	csrs   certificateslisters.CertificateSigningRequestLister
	queue  workqueue.TypedRateLimitingInterface[string]
}

func newController(client kubernetes.Interface) *controller {
	return &controller{
		client: client,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubelet-serving-csrs"}),
	}
}

// run watches kubelet-serving requests and decides the pending ones until ctx ends. Every goroutine
// it starts has ended when it returns.
func (c *controller) run(ctx context.Context) error {
	// Only kubelet-serving requests are watched: the API filters by signer.
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.signerName", certificatesv1.KubeletServingSignerName).String()
	}))
	informer := factory.Certificates().V1().CertificateSigningRequests()
	c.csrs = informer.Lister()
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && pending(csr) {
			c.queue.Add(csr.Name)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Only the end of ctx shuts the queue down, and so ends the loop below.
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	defer func() { <-stopped }()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return nil
	}
	for c.next(ctx) {
	}
	return nil
}

// next decides the next request in the queue; false when the queue is shut down.
func (c *controller) next(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	if err := c.decide(ctx, name); err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Deciding failed; retrying", "csr", name)
		}
		c.queue.AddRateLimited(name)
		return true
	}
	c.queue.Forget(name)
	return true
}

// decide reviews one request and records the decision through the approval subresource.
func (c *controller) decide(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName || !pending(csr) {
		return nil
	}
	// The Node is read from the API, not a cache: a kubelet requests its certificate right after
	// it recorded its addresses, and a stale copy would deny it.
	var node *corev1.Node
	if nodeName := NodeName(csr); nodeName != "" {
		node, err = c.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			node, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("reading node %s: %w", nodeName, err)
		}
	}
	d := Review(csr, node)
	cond := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateDenied, Status: corev1.ConditionTrue, Reason: ReasonDenied,
		Message: d.Message, LastUpdateTime: metav1.Now(),
	}
	if d.Approve {
		cond.Type, cond.Reason = certificatesv1.CertificateApproved, ReasonApproved
	}
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, cond)
	// The request's resourceVersion makes this fail on a request changed since it was read; the
	// retry then sees the change.
	if _, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("recording the decision (%s): %w", cond.Type, err)
	}
	klog.FromContext(ctx).Info("Decided", "csr", csr.Name, "requester", csr.Spec.Username, "decision", cond.Type, "message", d.Message)
	return nil
}

// pending is true for a request nobody has approved, denied or failed, and that has no certificate.
func pending(csr *certificatesv1.CertificateSigningRequest) bool {
	if len(csr.Status.Certificate) > 0 {
		return false
	}
	for _, c := range csr.Status.Conditions {
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			return false
		}
	}
	return true
}
