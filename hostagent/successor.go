package hostagent

import (
	"bufio"
	"context"
	"fmt"
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

// apiServersServing returns the distinct apiserver processes that answered on url, each named by
// its start time (process_start_time_seconds in /metrics), over fresh connections. Before the
// bootstrap apiserver is removed two must answer: itself and the self-hosted apiserver that shares
// its port, whose pod's readiness probe may have been answered by the bootstrap one.
func apiServersServing(ctx context.Context, cfg *rest.Config, url string) ([]string, error) {
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	seen := map[string]bool{}
	var lastErr error
	for range successorProbes {
		start, err := processStart(ctx, client, cfg, url)
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

func processStart(ctx context.Context, client *http.Client, cfg *rest.Config, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/metrics", nil)
	if err != nil {
		return "", err
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
	resp, err := client.Do(req)
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
			return v, nil
		}
	}
	return "", fmt.Errorf("GET %s/metrics: no process_start_time_seconds", url)
}
