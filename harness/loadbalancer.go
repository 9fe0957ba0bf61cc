package harness

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// LoadBalancer stands in for the API's network load balancer: a TCP proxy on the spec's
// api_server address that forwards each connection to a controller whose apiserver is healthy.
// Health is checked every second with GET /readyz (200 is healthy; 401 or 403 means the server
// answers TLS but hides /readyz, which counts as healthy, as a TCP health check would). When no
// target is healthy it tries them all, as cloud load balancers fail open.
type LoadBalancer struct {
	Addr    string
	targets []string

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	healthy map[string]bool
	next    int
	conns   map[net.Conn]struct{}
}

// StartLoadBalancer listens on addr and forwards to targets (host:port).
func StartLoadBalancer(addr string, targets []string) (*LoadBalancer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("API load balancer: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lb := &LoadBalancer{Addr: addr, targets: targets, ln: ln, ctx: ctx, cancel: cancel,
		healthy: map[string]bool{}, conns: map[net.Conn]struct{}{}}
	lb.wg.Add(2)
	go func() { defer lb.wg.Done(); lb.checkHealth() }()
	go func() { defer lb.wg.Done(); lb.accept() }()
	return lb, nil
}

// Healthy returns the targets that passed their last health check.
func (lb *LoadBalancer) Healthy() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var out []string
	for _, t := range lb.targets {
		if lb.healthy[t] {
			out = append(out, t)
		}
	}
	return out
}

// Close stops listening and closes every proxied connection.
func (lb *LoadBalancer) Close() {
	lb.cancel()
	lb.ln.Close()
	lb.mu.Lock()
	for c := range lb.conns {
		c.Close()
	}
	lb.mu.Unlock()
	lb.wg.Wait()
}

func (lb *LoadBalancer) checkHealth() {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
	}
	for {
		for _, t := range lb.targets {
			ok := false
			resp, err := client.Get("https://" + t + "/readyz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
			}
			lb.mu.Lock()
			lb.healthy[t] = ok
			lb.mu.Unlock()
		}
		select {
		case <-lb.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// order returns the targets to try for a new connection: healthy ones round-robin, or all of
// them when none is healthy.
func (lb *LoadBalancer) order() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var healthy []string
	for _, t := range lb.targets {
		if lb.healthy[t] {
			healthy = append(healthy, t)
		}
	}
	if len(healthy) == 0 {
		healthy = append(healthy, lb.targets...)
	}
	lb.next++
	n := lb.next % len(healthy)
	return append(healthy[n:], healthy[:n]...)
}

func (lb *LoadBalancer) accept() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		lb.wg.Add(1)
		go func() { defer lb.wg.Done(); lb.proxy(c) }()
	}
}

func (lb *LoadBalancer) track(c net.Conn, add bool) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if add {
		if lb.ctx.Err() != nil {
			return false
		}
		lb.conns[c] = struct{}{}
	} else {
		delete(lb.conns, c)
	}
	return true
}

func (lb *LoadBalancer) proxy(client net.Conn) {
	defer client.Close()
	if !lb.track(client, true) {
		return
	}
	defer lb.track(client, false)
	var backend net.Conn
	for _, t := range lb.order() {
		c, err := net.DialTimeout("tcp", t, 2*time.Second)
		if err == nil {
			backend = c
			break
		}
	}
	if backend == nil {
		return
	}
	defer backend.Close()
	if !lb.track(backend, true) {
		return
	}
	defer lb.track(backend, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(backend, client)
	go pipe(client, backend)
	<-done
	<-done
}
