package harness_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestMain runs the tests and then prints the failure table, when a test recorded a row of it, as
// the last thing the run says.
func TestMain(m *testing.M) {
	code := m.Run()
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

var recovery struct {
	mu   sync.Mutex
	rows []recoveryRow
}

// recordRecovery adds a row to the failure table; tests running in parallel may call it.
func recordRecovery(r recoveryRow) {
	recovery.mu.Lock()
	defer recovery.mu.Unlock()
	recovery.rows = append(recovery.rows, r)
}

// printRecoveryTable writes the recorded rows as a table, or nothing when there are none.
func printRecoveryTable(out io.Writer) {
	recovery.mu.Lock()
	defer recovery.mu.Unlock()
	if len(recovery.rows) == 0 {
		return
	}
	fmt.Fprintln(out, "\nFailure table (recovery: fault injected until the API and the component are healthy again)")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\trecovery\tfailed/requests\tkeys before\tkeys after\tnote")
	for _, r := range recovery.rows {
		fmt.Fprintf(w, "%s\t%s\t%d/%d\t%d\t%d\t%s\n", r.Scenario, r.Recovery.Round(100*time.Millisecond),
			r.Failed, r.Requests, r.KeysBefore, r.KeysAfter, r.Note)
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
				if msg := err.Error(); len(p.errors) < 5 && !containsString(p.errors, msg) {
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

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
