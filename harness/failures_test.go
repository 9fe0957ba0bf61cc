package harness_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/liftoff-k8s/liftoff/etcdadmin"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness"
)

// TestMain runs the tests and then prints the CIS Kubernetes Benchmark's summary and the failure
// table, when a test recorded them, as the last thing the run says.
func TestMain(m *testing.M) {
	code := m.Run()
	printCISTable(os.Stdout)
	printRecoveryTable(os.Stdout)
	os.Exit(code)
}

// recoveryRow is one row of the failure table that the harness tests print at the end.
type recoveryRow struct {
	Scenario              string        // e.g. "1 one of 3 apiservers dies"
	Recovery              time.Duration // fault injected until the API and the component are healthy again
	Requests, Failed      int           // requests through the endpoint during the fault, and how many failed
	KeysBefore, KeysAfter int           // objects written before the fault, and found after
	Note                  string
}

// recovery is the failure table; tests running in parallel may add to it.
var recovery resultTable[recoveryRow]

// printRecoveryTable writes the failure table, or nothing when no scenario ran.
func printRecoveryTable(out io.Writer) {
	recovery.print(out, "Failure table (recovery: fault injected until the API and the component are healthy again)",
		"scenario\trecovery\tfailed/requests\tkeys before\tkeys after\tnote", func(r recoveryRow) string {
			return fmt.Sprintf("%s\t%s\t%d/%d\t%d\t%d\t%s", r.Scenario, r.Recovery.Round(100*time.Millisecond),
				r.Failed, r.Requests, r.KeysBefore, r.KeysAfter, r.Note)
		})
}

// resultTable collects rows that tests record, to print as the last thing the run says.
type resultTable[T any] struct {
	mu   sync.Mutex
	rows []T
}

func (t *resultTable[T]) add(r T) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// print writes title, header and a line per row, their cells separated by tabs and aligned; nothing
// when no row was recorded.
func (t *resultTable[T]) print(out io.Writer, title, header string, line func(T) string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.rows) == 0 {
		return
	}
	fmt.Fprintf(out, "\n%s\n", title)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, r := range t.rows {
		fmt.Fprintln(w, line(r))
	}
	w.Flush()
}

// apiProbe is a client calling the API through the endpoint every 100 ms, as a user of the cluster
// would, counting the requests that fail.
type apiProbe struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu               sync.Mutex
	requests, failed int
	errors           []string // the first few distinct errors, for messages
}

// probeTimeout bounds one probe request: a request the endpoint swallows counts as failed.
const probeTimeout = 5 * time.Second

// startAPIProbe starts calling the API; Stop ends it.
func startAPIProbe(ctx context.Context, client kubernetes.Interface) *apiProbe {
	ctx, cancel := context.WithCancel(ctx)
	p := &apiProbe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
			_, err := client.CoreV1().Namespaces().Get(rctx, metav1.NamespaceSystem, metav1.GetOptions{})
			rcancel()
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.requests++
			if err != nil {
				p.failed++
				if msg := err.Error(); len(p.errors) < 5 && !slices.Contains(p.errors, msg) {
					p.errors = append(p.errors, msg)
				}
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// Stop ends the probe and returns how many requests it made and how many failed.
func (p *apiProbe) Stop() (requests, failed int) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests, p.failed
}

// Errors are the first few distinct errors the probe saw.
func (p *apiProbe) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// scenarioLabel is the label that marks the ConfigMaps written for a scenario.
const scenarioLabel = "liftoff.test/scenario"

var notLabelChars = regexp.MustCompile(`[^a-z0-9]+`)

// scenarioSlug turns a scenario's name into a label value and name prefix.
func scenarioSlug(scenario string) string {
	s := strings.Trim(notLabelChars.ReplaceAllString(strings.ToLower(scenario), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	return s
}

// writeKeys writes n ConfigMaps in default labelled for the scenario and returns how many were
// written. A write that fails is retried for a while, since the cluster may still be settling
// from the scenario before.
func writeKeys(t testing.TB, ctx context.Context, client kubernetes.Interface, scenario string, n int) int {
	t.Helper()
	slug := scenarioSlug(scenario)
	written := 0
	for i := range n {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", slug, i), Namespace: metav1.NamespaceDefault,
				Labels: map[string]string{scenarioLabel: slug}},
			Data: map[string]string{"scenario": scenario, "index": fmt.Sprint(i)},
		}
		err := retryAPI(ctx, 30*time.Second, func(ctx context.Context) error {
			_, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		if err != nil {
			t.Errorf("writing ConfigMap %s/%s for %q: %v", cm.Namespace, cm.Name, scenario, err)
			continue
		}
		written++
	}
	return written
}

// countKeys counts the ConfigMaps written for the scenario, retrying a failed list for a while.
func countKeys(t testing.TB, ctx context.Context, client kubernetes.Interface, scenario string) int {
	t.Helper()
	var n int
	err := retryAPI(ctx, 30*time.Second, func(ctx context.Context) error {
		list, err := client.CoreV1().ConfigMaps(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: scenarioLabel + "=" + scenarioSlug(scenario)})
		if err != nil {
			return err
		}
		n = len(list.Items)
		return nil
	})
	if err != nil {
		t.Errorf("counting the ConfigMaps written for %q: %v", scenario, err)
	}
	return n
}

// retryAPI calls f, each call bounded by probeTimeout, until it succeeds, for at most within.
func retryAPI(ctx context.Context, within time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, probeTimeout)
		err := f(rctx)
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// failureScenario is one row of the failure table: a fault injected into the running self-hosted
// cluster of three controllers, and the recovery that must follow it.
type failureScenario struct {
	name string
	// metric is BenchmarkRecovery's unit for the scenario's recovery time.
	metric string
	// maxFailed is the fraction of the probe's requests through the endpoint that may fail while
	// the fault lasts; 1 when the fault takes the API away by design.
	maxFailed float64
	inject    func(t testing.TB, ctx context.Context, fc failureCluster) outcome
}

// failureCluster is the cluster a scenario acts on.
type failureCluster struct {
	c      *harness.Cluster
	client kubernetes.Interface
}

// outcome is what a scenario measured.
type outcome struct {
	recovery time.Duration
	note     string
	// more are further durations, with BenchmarkRecovery's units.
	more []measured
}

type measured struct {
	unit string
	d    time.Duration
}

// failureScenarios are the rows of the failure table that a self-hosted cluster of three
// controllers goes through, in order; each starts on a settled cluster.
var failureScenarios = []failureScenario{
	{name: "1 one of 3 apiservers dies", metric: "s-apiserver-dies", maxFailed: 0.1, inject: apiserverDies},
	{name: "2 the leading scheduler dies", metric: "s-scheduler-leader-dies", maxFailed: 0.1, inject: leaderDies("kube-scheduler")},
	{name: "2 the leading controller-manager dies", metric: "s-controller-manager-leader-dies", maxFailed: 0.1, inject: leaderDies("kube-controller-manager")},
	{name: "7 one of 3 etcd members lost for good", metric: "s-etcd-member-replaced", maxFailed: 0.1, inject: etcdMemberLost},
	{name: "9 etcd unreachable from the apiservers", metric: "s-etcd-returns-to-api-ready", maxFailed: 1, inject: etcdUnreachable},
	{name: "10 a worker is partitioned", metric: "s-partitioned-pod-replaced", maxFailed: 0.1, inject: workerPartitioned},
	// The control plane's own losses come last: each leaves it rebuilt.
	{name: "3 every scheduler and controller-manager dies", metric: "s-recover-controller-managers", maxFailed: 0.1, inject: everySchedulerAndControllerManagerDies},
	{name: "8 etcd quorum is lost", metric: "s-etcd-restored-from-snapshot", maxFailed: 1, inject: quorumLostRestoredFromSnapshot},
	{name: "4 every controller dies, disks survive", metric: "s-recover-every-controller", maxFailed: 1, inject: everyControllerDies},
}

// testFailures runs the failure table on a pivoted self-hosted cluster of three controllers.
func testFailures(t *testing.T, c *harness.Cluster, client kubernetes.Interface) {
	for _, s := range failureScenarios {
		t.Run(scenarioSlug(s.name), func(t *testing.T) {
			runFailure(t, failureCluster{c, client}, s)
		})
	}
}

// keysPerScenario is how many ConfigMaps each scenario writes before its fault.
const keysPerScenario = 20

// runFailure waits for a settled cluster, writes keys, calls the API through the endpoint while
// the scenario injects its fault and waits for the recovery, then checks that every key is still
// there and records the row.
func runFailure(t testing.TB, fc failureCluster, s failureScenario) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	row := recoveryRow{Scenario: s.name}
	var out outcome
	defer func() {
		if t.Failed() {
			row.Note = strings.TrimSpace("FAILED " + row.Note)
		}
		recovery.add(row)
	}()
	if err := waitSettled(ctx, fc); err != nil {
		t.Fatalf("before the fault: %v", err)
	}
	row.KeysBefore = writeKeys(t, ctx, fc.client, s.name, keysPerScenario)
	probe := startAPIProbe(ctx, fc.client)
	func() {
		defer func() { row.Requests, row.Failed = probe.Stop() }()
		out = s.inject(t, ctx, fc)
	}()
	row.Recovery, row.Note = out.recovery, out.note
	row.KeysAfter = countKeys(t, ctx, fc.client, s.name)
	t.Logf("%s: recovered in %s; %d of %d requests through the endpoint failed %v; keys %d before, %d after; %s",
		s.name, out.recovery.Round(100*time.Millisecond), row.Failed, row.Requests, probe.Errors(), row.KeysBefore, row.KeysAfter, out.note)
	if row.KeysAfter != row.KeysBefore || row.KeysBefore != keysPerScenario {
		t.Errorf("%d objects written before the fault (of %d), %d found after", row.KeysBefore, keysPerScenario, row.KeysAfter)
	}
	if row.Requests == 0 || float64(row.Failed) > s.maxFailed*float64(row.Requests) {
		t.Errorf("%d of %d requests through the endpoint failed during the fault, more than %.0f%%: %v",
			row.Failed, row.Requests, 100*s.maxFailed, probe.Errors())
	}
	return out
}

// waitSettled waits until every Node is Ready, every control-plane pod is Ready with a current
// leader for the controller-manager and the scheduler, and the load balancer forwards to every
// controller.
func waitSettled(ctx context.Context, fc failureCluster) error {
	if err := harness.WaitForNodes(ctx, fc.client, fc.c.NodeNames(), nil); err != nil {
		return err
	}
	controllers := len(fc.c.Controllers())
	return harness.WaitForPods(ctx, fc.client, metav1.NamespaceSystem, "k8s-app in (kube-apiserver, kube-controller-manager, kube-scheduler)",
		"a settled control plane", func(ps []*corev1.Pod) (bool, string) {
			var missing []string
			live := 0
			for _, p := range ps {
				if p.DeletionTimestamp != nil {
					continue
				}
				live++
				if !harness.PodReady(p) {
					missing = append(missing, harness.DescribePod(p))
				}
			}
			if live != 3*controllers {
				missing = append(missing, fmt.Sprintf("%d control-plane pods, want %d", live, 3*controllers))
			}
			leaders, err := harness.Leaders(ctx, fc.client)
			if err != nil {
				missing = append(missing, err.Error())
			}
			for _, l := range leaders {
				if !l.Current {
					missing = append(missing, fmt.Sprintf("%s has no current leader (%q)", l.Component, l.Holder))
				}
			}
			if healthy := fc.c.LoadBalancer().Healthy(); len(healthy) != controllers {
				missing = append(missing, fmt.Sprintf("the load balancer forwards to %v only", healthy))
			}
			return len(missing) == 0, strings.Join(missing, "; ")
		})
}

// apiserverDies kills one controller's apiserver with SIGKILL; the API stays available through
// the endpoint, and the kubelet restarts the container until its pod is Ready again.
func apiserverDies(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Machine("controller-2")
	pod := controlPlanePodOn(t, ctx, fc.client, "kube-apiserver", m.Name)
	restarts := pod.Status.ContainerStatuses[0].RestartCount
	start := time.Now()
	if _, err := m.Kill("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	var sawUnready time.Duration
	err := harness.WaitForPod(ctx, fc.client, pod.Namespace, pod.Name, func(p *corev1.Pod) (bool, string) {
		if !harness.PodReady(p) && sawUnready == 0 {
			sawUnready = time.Since(start)
		}
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount > restarts && harness.PodReady(p), harness.DescribePod(p)
	})
	if err != nil {
		t.Fatalf("the killed apiserver's pod: %v", err)
	}
	podReady := time.Since(start)
	if err := waitAPIReady(ctx, fc); err != nil {
		t.Fatal(err)
	}
	return outcome{recovery: time.Since(start),
		note: fmt.Sprintf("%s's apiserver killed; pod NotReady %s after, Ready again %s after", m.Name,
			sawUnready.Round(100*time.Millisecond), podReady.Round(100*time.Millisecond))}
}

// leaderDies kills, with SIGKILL, the process of component that holds its leader election lease;
// another replica takes the lease over once it expires.
func leaderDies(component string) func(testing.TB, context.Context, failureCluster) outcome {
	return func(t testing.TB, ctx context.Context, fc failureCluster) outcome {
		leases := fc.client.CoordinationV1().Leases(metav1.NamespaceSystem)
		lease, err := leases.Get(ctx, component, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		holder := ptr.Deref(lease.Spec.HolderIdentity, "")
		// The identity is the host's name, which a host-network pod shares with its machine, and a
		// unique suffix.
		name, _, _ := strings.Cut(holder, "_")
		m := fc.c.Machine(name)
		if m == nil {
			t.Fatalf("lease %s is held by %q, which names no machine", component, holder)
		}
		start := time.Now()
		if _, err := m.Kill(component); err != nil {
			t.Fatal(err)
		}
		var taken *coordinationv1.Lease
		err = waitForLease(ctx, fc.client, component, func(l *coordinationv1.Lease) (bool, string) {
			h := ptr.Deref(l.Spec.HolderIdentity, "")
			if h != holder && h != "" && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(start) {
				taken = l
				return true, ""
			}
			return false, fmt.Sprintf("held by %q, renewed %v", h, l.Spec.RenewTime)
		})
		if err != nil {
			t.Fatalf("no other %s took the lease over from %s: %v", component, holder, err)
		}
		gap := time.Since(start)
		by, _, _ := strings.Cut(ptr.Deref(taken.Spec.HolderIdentity, ""), "_")
		if by == name {
			by = "the killed replica, restarted on " + name
		} else {
			by = "the replica on " + by
		}
		return outcome{recovery: gap, note: fmt.Sprintf("%s's leader on %s killed; lease (duration %ds) taken by %s",
			component, name, ptr.Deref(taken.Spec.LeaseDurationSeconds, 0), by)}
	}
}

// etcdHeldDown is how long etcd stays unreachable once the API says it is not ready.
const etcdHeldDown = 20 * time.Second

// etcdUnreachable cuts every etcd member off from the apiservers (their client port drops every
// packet; the members keep quorum over their peer port): the API says it is not ready, naming
// etcd, and is ready again on its own once etcd is reachable.
func etcdUnreachable(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	controllers := fc.c.Controllers()
	restarts := containerRestarts(t, ctx, fc.client, "k8s-app=kube-apiserver")
	// The controller-manager and the scheduler cannot renew their leases meanwhile.
	leaderRestarts := containerRestarts(t, ctx, fc.client, "k8s-app in (kube-controller-manager, kube-scheduler)")
	cut := func(on bool) error {
		var errs []error
		for _, m := range controllers {
			errs = append(errs, m.CutPort(generator.EtcdClientPort, on))
		}
		return errors.Join(errs...)
	}
	start := time.Now()
	if err := cut(true); err != nil {
		t.Fatal(err)
	}
	restored := false
	defer func() {
		if !restored {
			cut(false)
		}
	}()

	// Through the endpoint (which forwards to any apiserver when none is healthy), /readyz fails
	// naming etcd.
	var unready time.Duration
	var said string
	err := poll(ctx, 2*time.Minute, 500*time.Millisecond, func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		body, err := fc.client.Discovery().RESTClient().Get().AbsPath("/readyz").Param("verbose", "true").Do(rctx).Raw()
		said = strings.TrimSpace(string(body))
		if err != nil && strings.Contains(said, "[-]etcd") {
			return true, ""
		}
		return false, fmt.Sprintf("/readyz said %v: %s", err, said)
	})
	if err != nil {
		t.Fatalf("the API with etcd unreachable: %v", err)
	}
	unready = time.Since(start)
	var failing []string
	for _, l := range strings.Split(said, "\n") {
		if strings.HasPrefix(l, "[-]") {
			failing = append(failing, strings.TrimPrefix(strings.Fields(l)[0], "[-]"))
		}
	}
	t.Logf("/readyz through the endpoint %s after etcd was cut off: %s", unready.Round(100*time.Millisecond), strings.Join(failing, ", "))
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(etcdHeldDown):
	}
	servers, err := fc.c.APIServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.Ready {
			t.Errorf("apiserver on %s is ready with etcd unreachable", s.Machine)
		}
	}

	if err := cut(false); err != nil {
		t.Fatal(err)
	}
	restored = true
	returned := time.Now()
	if err := waitAPIReady(ctx, fc); err != nil {
		t.Fatalf("after etcd returned: %v", err)
	}
	ready := time.Since(returned)
	if err := waitSettled(ctx, fc); err != nil {
		t.Fatalf("after etcd returned: %v", err)
	}
	settled := time.Since(returned)
	restarted := containerRestarts(t, ctx, fc.client, "k8s-app=kube-apiserver") - restarts
	leadersRestarted := containerRestarts(t, ctx, fc.client, "k8s-app in (kube-controller-manager, kube-scheduler)") - leaderRestarts
	return outcome{recovery: ready,
		note: fmt.Sprintf("from etcd's return to every /readyz ok (cut %s; /readyz failed %s after, naming %s; requests meanwhile time out); control plane settled %s after; restarts: %d apiserver, %d controller-manager or scheduler",
			returned.Sub(start).Round(time.Second), unready.Round(100*time.Millisecond), strings.Join(failing, ","), settled.Round(100*time.Millisecond), restarted, leadersRestarted),
		more: []measured{{"s-etcd-cut-to-api-unready", unready}, {"s-etcd-returns-to-settled", settled}}}
}

// tolerationSeconds is how long the partition scenario's pod tolerates an unreachable Node.
const tolerationSeconds = 10

// workerPartitioned partitions worker-1, which runs a Deployment's pod that tolerates an
// unreachable Node for tolerationSeconds: the Node goes NotReady, the pod is evicted after its
// toleration and replaced on another machine; once the partition heals the Node is Ready again.
func workerPartitioned(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Machine("worker-1")
	pod := startPartitionVictim(t, ctx, fc.client, m.Name)
	start := time.Now()
	if err := m.Partition(true); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			m.Partition(false)
		}
	}()
	if err := harness.WaitForNodes(ctx, fc.client, []string{m.Name}, func(n *corev1.Node) bool { return !harness.NodeReady(n) }); err != nil {
		t.Fatalf("the partitioned worker: %v", err)
	}
	notReady := time.Since(start)

	var evicted, replaced time.Duration
	var replacement string
	err := harness.WaitForPods(ctx, fc.client, metav1.NamespaceDefault, "app="+partitionVictim, "the partitioned pod evicted and replaced",
		func(ps []*corev1.Pod) (bool, string) {
			for _, p := range ps {
				if p.Name == pod.Name && p.DeletionTimestamp != nil && evicted == 0 {
					evicted = time.Since(start)
				}
				if p.Name != pod.Name && p.Spec.NodeName != m.Name && harness.PodReady(p) && replaced == 0 {
					replaced, replacement = time.Since(start), p.Spec.NodeName
				}
			}
			return evicted > 0 && replaced > 0, describePods(ps)
		})
	if err != nil {
		t.Fatal(err)
	}
	// The eviction came no sooner than the toleration allows after the Node was tainted.
	node, err := fc.client.CoreV1().Nodes().Get(ctx, m.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tainted time.Time
	for _, taint := range node.Spec.Taints {
		if taint.Key == corev1.TaintNodeUnreachable && taint.Effect == corev1.TaintEffectNoExecute && taint.TimeAdded != nil {
			tainted = taint.TimeAdded.Time
		}
	}
	if tainted.IsZero() {
		t.Errorf("the partitioned Node has no %s:NoExecute taint: %v", corev1.TaintNodeUnreachable, node.Spec.Taints)
	} else if early := tainted.Add(tolerationSeconds * time.Second).Sub(start.Add(evicted)); early > time.Second {
		t.Errorf("the pod was evicted %s before its toleration of %ds ran out", early, tolerationSeconds)
	}

	if err := m.Partition(false); err != nil {
		t.Fatal(err)
	}
	healed = true
	healedAt := time.Now()
	if err := harness.WaitForNodes(ctx, fc.client, []string{m.Name}, nil); err != nil {
		t.Fatalf("the worker after the partition healed: %v", err)
	}
	readyAgain := time.Since(healedAt)
	// The evicted pod's kubelet hears of its deletion and it goes.
	err = harness.WaitForPods(ctx, fc.client, metav1.NamespaceDefault, "app="+partitionVictim, "the evicted pod gone",
		func(ps []*corev1.Pod) (bool, string) {
			return !slices.ContainsFunc(ps, func(p *corev1.Pod) bool { return p.Name == pod.Name }), describePods(ps)
		})
	if err != nil {
		t.Error(err)
	}
	gone := time.Since(healedAt)
	if err := fc.client.AppsV1().Deployments(metav1.NamespaceDefault).Delete(ctx, partitionVictim, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}
	return outcome{recovery: replaced,
		note: fmt.Sprintf("to the pod replaced on %s; Node NotReady %s after, pod evicted %s after (taint %s after, toleration %ds); Node Ready %s after the partition healed, evicted pod gone %s after",
			replacement, notReady.Round(100*time.Millisecond), evicted.Round(100*time.Millisecond), tainted.Sub(start).Round(time.Second),
			tolerationSeconds, readyAgain.Round(100*time.Millisecond), gone.Round(100*time.Millisecond)),
		more: []measured{{"s-partitioned-node-notready", notReady}, {"s-partitioned-pod-evicted", evicted}, {"s-healed-node-ready", readyAgain}}}
}

// partitionVictim is the Deployment the partition scenario runs on the worker it partitions.
const partitionVictim = "partition-victim"

// startPartitionVictim runs a one-replica Deployment that prefers node, tolerates its Node being
// unreachable or not ready for tolerationSeconds, and may run on controllers too (so that it can
// be replaced when node is the only worker), and returns its pod once Ready on node.
func startPartitionVictim(t testing.TB, ctx context.Context, client kubernetes.Interface, node string) *corev1.Pod {
	t.Helper()
	labels := map[string]string{"app": partitionVictim}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: partitionVictim, Namespace: metav1.NamespaceDefault},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers: []corev1.Container{{
						Name: "sleep", Image: testImage, ImagePullPolicy: corev1.PullNever,
						Command: []string{"sleep", "100000"},
					}},
					Tolerations: []corev1.Toleration{
						{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](tolerationSeconds)},
						{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](tolerationSeconds)},
						{Key: "node-role.kubernetes.io/controller", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
					},
					Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100,
							Preference: corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
								{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}},
					}},
				},
			},
		},
	}
	if _, err := client.AppsV1().Deployments(d.Namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	err := harness.WaitForPods(ctx, client, d.Namespace, "app="+partitionVictim, "the Deployment's pod Ready on "+node, func(ps []*corev1.Pod) (bool, string) {
		for _, p := range ps {
			if p.Spec.NodeName == node && harness.PodReady(p) && p.DeletionTimestamp == nil {
				pod = p
				return true, ""
			}
		}
		return false, describePods(ps)
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// controlPlanePodOn returns the live self-hosted pod of a control-plane component on node.
func controlPlanePodOn(t testing.TB, ctx context.Context, client kubernetes.Interface, component, node string) *corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=" + component})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pods.Items {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil && p.Annotations[corev1.MirrorPodAnnotationKey] == "" && len(p.Status.ContainerStatuses) == 1 {
			return &pods.Items[i]
		}
	}
	t.Fatalf("no %s pod runs on %s", component, node)
	return nil
}

// containerRestarts sums the restart counts of the containers of the pods matching selector.
func containerRestarts(t testing.TB, ctx context.Context, client kubernetes.Interface, selector string) int32 {
	t.Helper()
	var n int32
	err := retryAPI(ctx, time.Minute, func(ctx context.Context) error {
		pods, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		n = 0
		for _, p := range pods.Items {
			for _, cs := range p.Status.ContainerStatuses {
				n += cs.RestartCount
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitAPIReady waits until every controller's apiserver and the API through the endpoint answer
// /readyz with ok.
func waitAPIReady(ctx context.Context, fc failureCluster) error {
	err := poll(ctx, 5*time.Minute, 250*time.Millisecond, func() (bool, string) {
		servers, err := fc.c.APIServers(ctx)
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for _, s := range servers {
			if !s.Ready {
				missing = append(missing, s.Machine+": "+s.Detail)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		if body, err := fc.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx); err != nil || string(body) != "ok" {
			missing = append(missing, fmt.Sprintf("the endpoint: %v %s", err, body))
		}
		return len(missing) == 0, strings.Join(missing, "; ")
	})
	if err != nil {
		return fmt.Errorf("the API ready on every controller and through the endpoint: %w", err)
	}
	return nil
}

// poll calls check every interval until it says done, for at most within; the error says what
// check last reported missing. For what has no watch, such as /readyz.
func poll(ctx context.Context, within, interval time.Duration, check func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		ok, missing := check()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; still missing: %s", ctx.Err(), missing)
		case <-time.After(interval):
		}
	}
}

// waitForLease watches the kube-system Lease name until check, given each version of it, is
// satisfied; the error says what check last reported.
func waitForLease(ctx context.Context, client kubernetes.Interface, name string, check func(*coordinationv1.Lease) (bool, string)) error {
	leases := client.CoordinationV1().Leases(metav1.NamespaceSystem)
	sel := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	last := "not seen yet"
	_, err := watchtools.UntilWithSync(ctx, lw, &coordinationv1.Lease{}, nil, func(e watch.Event) (bool, error) {
		l, ok := e.Object.(*coordinationv1.Lease)
		if !ok {
			return false, nil
		}
		done, missing := check(l)
		last = missing
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("lease %s: %w; last seen %s", name, err, last)
	}
	return nil
}

// etcdMemberLost loses controller-3's etcd member for good: killed, its data directory emptied.
// The other two keep quorum and the API serves; `liftoff etcd replace` swaps the lost member for a
// new one, which controller-3's etcd unit, restarting as it does after any exit, joins as: it
// catches up with the others' data.
func etcdMemberLost(t testing.TB, ctx context.Context, fc failureCluster) outcome {
	m := fc.c.Machine("controller-3")
	start := time.Now()
	if _, err := m.Kill("etcd"); err != nil {
		t.Fatal(err)
	}
	// The unit starts etcd again after RestartSec (5 s): its data is gone before.
	dataDir := filepath.Join(m.Root, generator.HostEtcdDataDir)
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dataDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	// Quorum holds: two healthy members, and the API takes a write.
	err = poll(ctx, time.Minute, time.Second, func() (bool, string) {
		members, err := fc.c.EtcdMembers(ctx)
		if err != nil {
			return false, err.Error()
		}
		return etcdHealthy(members) == 2, fmt.Sprintf("%+v", members)
	})
	if err != nil {
		t.Fatalf("etcd with one member lost: %v", err)
	}
	if n := writeKeys(t, ctx, fc.client, "7 written with a member lost", 1); n != 1 {
		t.Fatal("the API took no write with one etcd member lost")
	}
	admin, err := etcdadmin.Open(fc.c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	replaced := time.Now()
	r, err := admin.Replace(ctx, m.Name)
	if err != nil {
		t.Fatalf("liftoff etcd replace %s: %v", m.Name, err)
	}
	t.Logf("replaced etcd member %s: removed %x, added %x, %d of %d members healthy", m.Name, r.RemovedID, r.AddedID, r.Healthy, r.Members)
	err = poll(ctx, 3*time.Minute, time.Second, func() (bool, string) {
		members, err := fc.c.EtcdMembers(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(members) == 3 && etcdHealthy(members) == 3, fmt.Sprintf("%+v", members)
	})
	if err != nil {
		t.Fatalf("the replacement etcd member on %s: %v", m.Name, err)
	}
	joined := time.Since(replaced)
	// The replacement holds what was written, read from it alone.
	tlsCfg, err := fc.c.EtcdTLS()
	if err != nil {
		t.Fatal(err)
	}
	own := "https://" + net.JoinHostPort(m.IP, strconv.Itoa(generator.EtcdClientPort))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{own}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	prefix := "/registry/configmaps/" + metav1.NamespaceDefault + "/" + scenarioSlug("7 one of 3 etcd members lost for good")
	err = poll(ctx, time.Minute, time.Second, func() (bool, string) {
		rctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		got, err := cli.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		if err != nil {
			return false, err.Error()
		}
		return got.Count == keysPerScenario, fmt.Sprintf("%d of %d keys", got.Count, keysPerScenario)
	})
	if err != nil {
		t.Errorf("the replacement member's own data: %v", err)
	}
	if err := waitAPIReady(ctx, fc); err != nil {
		t.Fatal(err)
	}
	return outcome{recovery: time.Since(start),
		note: fmt.Sprintf("quorum held with 2 of 3; replaced %s after the loss; the new member healthy %s after the replace",
			replaced.Sub(start).Round(100*time.Millisecond), joined.Round(100*time.Millisecond)),
		more: []measured{{"s-etcd-replaced-member-healthy", joined}}}
}

// etcdHealthy counts the healthy members.
func etcdHealthy(members []harness.EtcdMember) int {
	n := 0
	for _, m := range members {
		if m.Healthy {
			n++
		}
	}
	return n
}
