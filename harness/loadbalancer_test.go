package harness

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoadBalancer checks that connections go only to targets whose /readyz answers 200, and to
// any target when none does.
func TestLoadBalancer(t *testing.T) {
	backend := func(name string, ready *atomic.Bool) *httptest.Server {
		s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/readyz" && !ready.Load() {
				http.Error(w, "not ready", http.StatusInternalServerError)
				return
			}
			io.WriteString(w, name)
		}))
		t.Cleanup(s.Close)
		return s
	}
	var readyA, readyB atomic.Bool
	readyA.Store(true)
	a, b := backend("a", &readyA), backend("b", &readyB)
	lb, err := StartLoadBalancer("127.42.1.10:0", []string{strings.TrimPrefix(a.URL, "https://"), strings.TrimPrefix(b.URL, "https://")})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	addr := lb.ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	get := func() string {
		resp, err := client.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	waitHealthy := func(want int) {
		for deadline := time.Now().Add(10 * time.Second); len(lb.Healthy()) != want && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if got := len(lb.Healthy()); got != want {
			t.Fatalf("%d healthy targets, want %d", got, want)
		}
	}
	waitHealthy(1)
	for range 6 {
		if got := get(); got != "a" {
			t.Fatalf("connection went to %q while only a is healthy", got)
		}
	}
	readyA.Store(false)
	waitHealthy(0)
	seen := map[string]bool{}
	for range 6 {
		seen[get()] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("with no healthy target, connections went to %v; want both (fail open)", seen)
	}
}
