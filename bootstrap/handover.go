package bootstrap

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// HandoverStats is what a client calling the API through the cluster's endpoint saw while the
// control plane was created and the bootstrap one removed.
type HandoverStats struct {
	Endpoint string `json:"endpoint"`
	// Requests were made one after another; Failed of them returned an error to the caller after
	// client-go's own retries, which every Kubernetes client has.
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// Retried counts attempts that failed at the connection or with a 429 or 5xx answer and were
	// retried by the client.
	Retried     int    `json:"retried"`
	LastFailure string `json:"lastFailure,omitempty"`
}

func (s HandoverStats) String() string {
	out := fmt.Sprintf("%d requests through %s: %d failed, %d attempts retried", s.Requests, s.Endpoint, s.Failed, s.Retried)
	if s.LastFailure != "" {
		out += "; last failure: " + s.LastFailure
	}
	return out
}

// handoverInterval paces the probe's requests.
const handoverInterval = 100 * time.Millisecond

// handoverProbe calls the API through the endpoint until stopped.
type handoverProbe struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	stats  HandoverStats
}

// startHandoverProbe starts reading the kube-system namespace through cfg's endpoint every
// handoverInterval, each request on its own short deadline, with a client of its own so that its
// connections are not the run's.
func startHandoverProbe(ctx context.Context, cfg *rest.Config) (*handoverProbe, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "liftoff-bootstrap-handover-probe"
	cfg.QPS, cfg.Burst = 100, 100
	cfg.Timeout = 15 * time.Second
	ctx, cancel := context.WithCancel(ctx)
	p := &handoverProbe{cancel: cancel, done: make(chan struct{}), stats: HandoverStats{Endpoint: cfg.Host}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, p} })
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(handoverInterval)
		defer tick.Stop()
		for {
			_, err := client.CoreV1().Namespaces().Get(ctx, metav1.NamespaceSystem, metav1.GetOptions{})
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			p.stats.Requests++
			if err != nil {
				p.stats.Failed++
				p.stats.LastFailure = time.Now().UTC().Format(time.RFC3339) + " " + err.Error()
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p, nil
}

// stop ends the probe and returns what it saw.
func (p *handoverProbe) stop() HandoverStats {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// countingTransport counts the attempts that the client retries.
type countingTransport struct {
	rt http.RoundTripper
	p  *handoverProbe
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if req.Context().Err() != nil {
		return resp, err
	}
	if err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		t.p.mu.Lock()
		t.p.stats.Retried++
		t.p.mu.Unlock()
	}
	return resp, err
}
