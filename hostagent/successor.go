package hostagent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// successorProbes is how many fresh connections the agent opens to its host's apiserver address
// to find out which processes serve there. The kernel spreads the connections of listeners that
// share a port (SO_REUSEPORT) over them by a hash of each connection's addresses, so a process
// that serves is missed by all of them with a chance of 2^-successorProbes.
const successorProbes = 16

// apiServersServing returns the distinct apiserver processes that are ready on url, each named
// by its start time (process_start_time_seconds in /metrics). Each probe opens a fresh connection
// and asks both /metrics and /readyz over it, so both answers come from one process; a process
// counts only when it is ready. Before the bootstrap apiserver is removed two must be: itself and
// the self-hosted apiserver that shares its port, whose pod's readiness probe may have been
// answered by the bootstrap one.
func apiServersServing(ctx context.Context, cfg *rest.Config, url string) ([]string, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var lastErr error
	for range successorProbes {
		// A transport per probe: one connection, kept for the probe's two requests.
		transport := &http.Transport{TLSClientConfig: tlsConfig, MaxConnsPerHost: 1}
		client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
		start, err := processStart(ctx, client, cfg, url)
		if err == nil {
			err = ready(ctx, client, cfg, url)
		}
		transport.CloseIdleConnections()
		if err != nil {
			lastErr = err
			continue
		}
		seen[start] = true
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, lastErr
	}
	return out, nil
}

// ready asks url's /readyz.
func ready(ctx context.Context, client *http.Client, cfg *rest.Config, url string) error {
	resp, err := get(ctx, client, cfg, strings.TrimSuffix(url, "/")+"/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s/readyz: %s", url, resp.Status)
	}
	return nil
}

func get(ctx context.Context, client *http.Client, cfg *rest.Config, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	token := cfg.BearerToken
	if cfg.BearerTokenFile != "" {
		if t, err := readToken(cfg.BearerTokenFile); err == nil {
			token = t
		}
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return client.Do(req)
}

func processStart(ctx context.Context, client *http.Client, cfg *rest.Config, url string) (string, error) {
	resp, err := get(ctx, client, cfg, strings.TrimSuffix(url, "/")+"/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_start_time_seconds "); ok {
			// The rest is read, so that the connection serves the probe's next request.
			io.Copy(io.Discard, resp.Body)
			return v, nil
		}
	}
	return "", fmt.Errorf("GET %s/metrics: no process_start_time_seconds", url)
}
