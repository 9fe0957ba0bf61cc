package kubelet

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podWorker runs one pod: its sandbox (an address), its init containers in order, then its
// containers, and computes the pod's status from what really happened.
type podWorker struct {
	pm     *podManager
	uid    types.UID
	static bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	spec        *corev1.Pod
	podIP       string
	sandboxErr  string
	startTime   metav1.Time
	initDone    bool
	initFailed  bool
	containers  []*container
	terminating bool
	// graceful is how long processes get between SIGTERM and SIGKILL when the pod stops; zero
	// for a power loss.
	grace       time.Duration
	transitions map[corev1.PodConditionType]condState
}

type condState struct {
	status corev1.ConditionStatus
	since  metav1.Time
}

func newPodWorker(pm *podManager, p *corev1.Pod) *podWorker {
	w := &podWorker{pm: pm, uid: p.UID, static: isStatic(p), spec: p, done: make(chan struct{}),
		startTime: metav1.Now(), transitions: map[corev1.PodConditionType]condState{}}
	for i := range p.Spec.InitContainers {
		w.containers = append(w.containers, newContainer(w, p.Spec.InitContainers[i], true))
	}
	for i := range p.Spec.Containers {
		w.containers = append(w.containers, newContainer(w, p.Spec.Containers[i], false))
	}
	// Restart counts continue from what the API last reported, as they would from the runtime's
	// records of earlier containers.
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		for _, c := range w.containers {
			if c.spec.Name == cs.Name && (cs.State.Running != nil || cs.State.Terminated != nil || cs.RestartCount > 0) {
				c.restarts, c.continued = cs.RestartCount, true
			}
		}
	}
	return w
}

func (w *podWorker) pod() *corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.spec
}

func (w *podWorker) update(p *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spec = p
}

func (w *podWorker) isTerminating() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.terminating
}

func (w *podWorker) changed() { signal(w.pm.dirty) }

// terminate stops the pod's containers, giving each grace (the pod's own grace period when
// negative) between SIGTERM and SIGKILL.
func (w *podWorker) terminate(_ context.Context, grace time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.terminating {
		return
	}
	if grace < 0 {
		grace = 30 * time.Second
		if g := w.spec.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
	}
	w.terminating, w.grace = true, grace
	if w.cancel != nil {
		w.cancel()
	}
}

// powerOff kills every process of the pod at once.
func (w *podWorker) powerOff() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.terminating, w.grace = true, 0
	if w.cancel != nil {
		w.cancel()
	}
}

func (w *podWorker) stopGrace() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.grace
}

func (w *podWorker) killContainer(name string) error {
	for _, c := range w.containers {
		if c.spec.Name == name {
			return c.kill()
		}
	}
	return fmt.Errorf("pod %s/%s has no container %q", w.spec.Namespace, w.spec.Name, name)
}

// run runs the pod until it is terminated or the kubelet stops.
func (w *podWorker) run(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	w.mu.Lock()
	w.ctx, w.cancel = ctx, cancel
	if w.terminating {
		cancel()
	}
	w.mu.Unlock()
	defer cancel()
	defer w.changed()

	if !w.sandbox(ctx) {
		return
	}
	var inits, regular []*container
	for _, c := range w.containers {
		if c.init && !c.sidecar() {
			inits = append(inits, c)
		} else {
			regular = append(regular, c)
		}
	}
	for _, c := range inits {
		if !c.runToCompletion(ctx) {
			if ctx.Err() == nil {
				w.mu.Lock()
				w.initFailed = true
				w.mu.Unlock()
				w.changed()
				<-ctx.Done()
			}
			return
		}
	}
	w.mu.Lock()
	w.initDone = true
	w.mu.Unlock()
	w.changed()
	var wg sync.WaitGroup
	for _, c := range regular {
		wg.Add(1)
		go func() { defer wg.Done(); c.run(ctx) }()
	}
	wg.Wait()
	// Containers that will not restart leave the pod Succeeded or Failed; it stays until deleted.
	<-ctx.Done()
}

// sandbox gives the pod its address: the node's for host-network pods, one from the node's pod
// CIDR otherwise (waiting until the controller-manager has assigned one).
func (w *podWorker) sandbox(ctx context.Context) bool {
	p := w.pod()
	if p.Spec.HostNetwork {
		w.mu.Lock()
		w.podIP = w.pm.k.flags.NodeIP
		w.mu.Unlock()
		w.changed()
		return true
	}
	for {
		ip, err := w.pm.allocateIP(w.uid)
		if err == nil {
			w.mu.Lock()
			w.podIP, w.sandboxErr = ip, ""
			w.mu.Unlock()
			w.changed()
			return true
		}
		w.mu.Lock()
		w.sandboxErr = err.Error()
		w.mu.Unlock()
		w.changed()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

// status computes the pod's status. api is the API's copy of the pod (the mirror pod for a static
// pod), whose conditions owned by others (PodScheduled, disruption) are kept.
func (w *podWorker) status(api *corev1.Pod) corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := corev1.PodStatus{
		HostIP:    w.pm.k.flags.NodeIP,
		HostIPs:   []corev1.HostIP{{IP: w.pm.k.flags.NodeIP}},
		StartTime: &w.startTime,
	}
	if w.podIP != "" {
		st.PodIP = w.podIP
		st.PodIPs = []corev1.PodIP{{IP: w.podIP}}
	}
	var notReady, simulated []string
	allInitDone := w.initDone
	running, started, terminal, failed, regular := 0, 0, 0, 0, 0
	for _, c := range w.containers {
		cs := c.status()
		if c.init && !c.sidecar() {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			continue
		}
		if c.init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		} else {
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		}
		regular++
		if !cs.Ready {
			notReady = append(notReady, cs.Name)
		}
		if c.simulated() {
			simulated = append(simulated, cs.Name+" ("+c.spec.Image+")")
		}
		switch {
		case cs.State.Running != nil:
			running++
			started++
		case cs.State.Terminated != nil && !c.willRestart():
			terminal++
			started++
			if cs.State.Terminated.ExitCode != 0 {
				failed++
			}
		case cs.RestartCount > 0 || cs.LastTerminationState.Terminated != nil:
			started++
		}
	}
	switch {
	case w.initFailed:
		st.Phase = corev1.PodFailed
	case !allInitDone:
		st.Phase = corev1.PodPending
	case regular > 0 && terminal == regular && failed == 0:
		st.Phase = corev1.PodSucceeded
	case regular > 0 && terminal == regular:
		st.Phase = corev1.PodFailed
	case started > 0:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}

	ready := allInitDone && len(notReady) == 0 && regular > 0
	var reason, message string
	if !ready {
		reason = "ContainersNotReady"
		message = fmt.Sprintf("containers with unready status: [%s]", strings.Join(notReady, " "))
		if len(simulated) > 0 {
			reason = "ContainersNotRun"
			message += "; not run by the liftoff harness (reported Running without a process): " + strings.Join(simulated, ", ")
		}
	}
	sandboxReady := w.podIP != ""
	conds := []corev1.PodCondition{
		w.condition(corev1.PodReadyToStartContainers, sandboxReady, "", w.sandboxErr),
		w.condition(corev1.PodInitialized, allInitDone, map[bool]string{true: "", false: "ContainersNotInitialized"}[allInitDone], ""),
		w.condition(corev1.ContainersReady, ready, reason, message),
		w.condition(corev1.PodReady, ready, reason, message),
	}
	if api != nil {
		for _, c := range api.Status.Conditions {
			switch c.Type {
			case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady:
			default:
				conds = append(conds, c)
			}
		}
	}
	if !hasCondition(conds, corev1.PodScheduled) {
		conds = append(conds, w.condition(corev1.PodScheduled, true, "", ""))
	}
	sort.SliceStable(conds, func(i, j int) bool { return condOrder(conds[i].Type) < condOrder(conds[j].Type) })
	st.Conditions = conds
	if api != nil {
		st.QOSClass = api.Status.QOSClass
	}
	return st
}

func hasCondition(conds []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return true
		}
	}
	return false
}

func condOrder(t corev1.PodConditionType) int {
	for i, o := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		if o == t {
			return i
		}
	}
	return 99
}

// condition builds a condition, keeping its transition time while its status stays the same.
func (w *podWorker) condition(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
		reason, message = "", ""
	}
	prev, seen := w.transitions[t]
	if !seen || prev.status != status {
		prev = condState{status: status, since: metav1.Now()}
		w.transitions[t] = prev
	}
	return corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: prev.since}
}

// logDir is where a pod's container logs go on the machine, as on a real node.
func (w *podWorker) logDir() string {
	p := w.pod()
	return path.Join("/var/log/pods", fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID))
}

// podDir is the pod's directory on the machine, where its volumes are materialised.
func (w *podWorker) podDir() string {
	return path.Join("/var/lib/kubelet/pods", string(w.uid))
}
