package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// probe runs the container's startup, readiness and liveness probes against its process. Without
// a startup probe the container counts as started at once; without a readiness probe it is
// ready once started, as with the real kubelet.
func (c *container) probe(ctx context.Context, p *proc.Process) {
	if sp := c.spec.StartupProbe; sp != nil {
		started := false
		c.probeLoop(ctx, sp, "startup", func(ok bool) bool {
			if !ok {
				c.w.pm.k.logf("%s: startup probe failed %d times; killing it", c.describe(), threshold(sp.FailureThreshold, 3))
				c.stopProcess(p)
				return true
			}
			started = true
			return true
		})
		if !started {
			return
		}
	}
	c.setStarted(true)
	if rp := c.spec.ReadinessProbe; rp != nil {
		go c.probeLoop(ctx, rp, "readiness", func(ok bool) bool { c.setReady(ok); return false })
	} else {
		c.setReady(true)
	}
	if lp := c.spec.LivenessProbe; lp != nil {
		c.probeLoop(ctx, lp, "liveness", func(ok bool) bool {
			if !ok {
				c.w.pm.k.logf("%s: liveness probe failed %d times; restarting it", c.describe(), threshold(lp.FailureThreshold, 3))
				c.stopProcess(p)
				return true
			}
			return false
		})
	}
}

func (c *container) describe() string {
	p := c.w.pod()
	return fmt.Sprintf("container %s of pod %s/%s", c.spec.Name, p.Namespace, p.Name)
}

func (c *container) stopProcess(p *proc.Process) {
	grace := 30 * time.Second
	if g := c.w.pod().Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	go p.Stop(grace)
}

func threshold(v, def int32) int32 {
	if v <= 0 {
		return def
	}
	return v
}

// probeLoop runs one probe every period after the initial delay and calls result when the
// outcome crosses the success or failure threshold; it stops when result returns true or ctx
// ends.
func (c *container) probeLoop(ctx context.Context, pr *corev1.Probe, kind string, result func(ok bool) bool) {
	period := time.Duration(threshold(pr.PeriodSeconds, 10)) * time.Second
	timeout := time.Duration(threshold(pr.TimeoutSeconds, 1)) * time.Second
	successes, failures := 0, 0
	successNeeded, failuresAllowed := int(threshold(pr.SuccessThreshold, 1)), int(threshold(pr.FailureThreshold, 3))
	wait := time.Duration(pr.InitialDelaySeconds) * time.Second
	reported := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = period
		ok, why := c.probeOnce(ctx, pr, timeout)
		if ctx.Err() != nil {
			return
		}
		if ok {
			successes, failures = successes+1, 0
			reported = ""
			if successes >= successNeeded && result(true) {
				return
			}
			continue
		}
		if why != reported {
			c.w.pm.k.logf("%s: %s probe failed: %s", c.describe(), kind, why)
			reported = why
		}
		successes, failures = 0, failures+1
		if failures >= failuresAllowed && result(false) {
			return
		}
	}
}

// probeOnce performs one probe. httpGet does not verify the server's certificate, as the kubelet
// does not; exec and gRPC probes cannot be run here and always fail, saying why.
func (c *container) probeOnce(ctx context.Context, pr *corev1.Probe, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c.w.mu.Lock()
	podIP := c.w.podIP
	c.w.mu.Unlock()
	switch {
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		host := g.Host
		if host == "" {
			host = podIP
		}
		port, err := c.port(g.Port)
		if err != nil {
			return false, err.Error()
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		p := g.Path
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + p
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/1.35")
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		client := &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		}}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("GET %s: HTTP %d", url, resp.StatusCode)
	case pr.TCPSocket != nil:
		host := pr.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		port, err := c.port(pr.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case pr.Exec != nil:
		return false, "exec probes are not run by the liftoff harness"
	case pr.GRPC != nil:
		return false, "gRPC probes are not run by the liftoff harness"
	}
	return false, "the probe has no handler"
}

// port resolves a probe's port, by number or by the name of one of the container's ports.
func (c *container) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.spec.Name, p.StrVal)
}
