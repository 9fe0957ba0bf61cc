// Package hostagent is `liftoff agent`: the part of liftoff that acts on a controller's host, where
// the API cannot. It runs as a DaemonSet on a self-hosted cluster's controllers with the kubelet's
// static pod directory mounted, and takes requests through one ConfigMap (generator.PivotRecord),
// so the pivot needs no SSH: when the pivot asks for the bootstrap control plane's teardown, the
// agent removes the bootstrap-*.yaml static pods from its host and answers under its node's key.
package hostagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/liftoff-k8s/liftoff/generator"
)

// Keys of the PivotRecord ConfigMap through which the pivot and the agents talk.
const (
	// KeyTeardown holds the pivot's request to remove the bootstrap control plane: an ID that
	// changes with every request.
	KeyTeardown = "teardown"
	// KeyTeardownSuccessor names the node whose bootstrap apiserver shares its port with a
	// self-hosted one: its agent removes it only once that successor answers too. A bootstrap
	// machine has no successor.
	KeyTeardownSuccessor = "teardown-successor-node"
	// KeyTeardownDone + a node name holds that node's agent's answer: the request's ID, then what
	// it removed or why it could not.
	KeyTeardownDone = "teardown-done."
)

// Namespace is where the PivotRecord ConfigMap lives.
const Namespace = metav1.NamespaceSystem

// Answer is an agent's answer to a teardown request.
type Answer struct {
	Request string
	// Removed are the files removed; Error, when set, says why the request failed; Waiting, when
	// set, what the agent waits for before it acts.
	Removed []string
	Error   string
	Waiting string
}

// String is the answer as stored: "ID removed a.yaml b.yaml", "ID removed nothing" or "ID failed: why".
func (a Answer) String() string {
	switch {
	case a.Error != "":
		return a.Request + " failed: " + a.Error
	case a.Waiting != "":
		return a.Request + " waiting: " + a.Waiting
	case len(a.Removed) == 0:
		return a.Request + " removed nothing"
	}
	return a.Request + " removed " + strings.Join(a.Removed, " ")
}

// ParseAnswer reads a stored answer.
func ParseAnswer(s string) Answer {
	id, rest, _ := strings.Cut(s, " ")
	a := Answer{Request: id}
	switch {
	case strings.HasPrefix(rest, "failed: "):
		a.Error = strings.TrimPrefix(rest, "failed: ")
	case strings.HasPrefix(rest, "waiting: "):
		a.Waiting = strings.TrimPrefix(rest, "waiting: ")
	case rest == "removed nothing":
	case strings.HasPrefix(rest, "removed "):
		a.Removed = strings.Fields(strings.TrimPrefix(rest, "removed "))
	}
	return a
}

// Options configure an agent.
type Options struct {
	Client kubernetes.Interface
	// Node is the node the agent runs on, whose answers it writes.
	Node string
	// StaticPodDir is the kubelet's static pod directory as the agent sees it.
	StaticPodDir string
	// Config reaches the API; its credentials also read the host's apiserver's /metrics.
	Config *rest.Config
	// HostAPIServer is the URL of the apiserver address on this host. While the bootstrap
	// apiserver runs here, the agent removes it only once a second apiserver, its successor,
	// answers there too.
	HostAPIServer string
	// Logf receives what the agent does.
	Logf func(format string, args ...any)
}

// Run serves requests until ctx ends.
func Run(ctx context.Context, opts Options) error {
	if opts.Node == "" {
		return errors.New("agent: the node name is not set (NODE_NAME in the pod, from spec.nodeName)")
	}
	if fi, err := os.Stat(opts.StaticPodDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("agent: the static pod directory %s is not mounted: %v", opts.StaticPodDir, err)
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	a := &agent{Options: opts, requests: make(chan struct{}, 1)}
	sel := fields.OneTermEqualSelector("metadata.name", generator.PivotRecord).String()
	lw := cache.NewFilteredListWatchFromClient(opts.Client.CoreV1().RESTClient(), "configmaps", Namespace,
		func(o *metav1.ListOptions) { o.FieldSelector = sel })
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &corev1.ConfigMap{},
		// A request whose answer failed to be written is taken up again at the next resync.
		ResyncPeriod: 30 * time.Second,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { a.offer(obj) },
			UpdateFunc: func(_, obj any) { a.offer(obj) },
		},
	})
	opts.Logf("agent on node %s: watching ConfigMap %s/%s; static pods in %s", opts.Node, Namespace, generator.PivotRecord, opts.StaticPodDir)
	go informer.Run(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.requests:
			a.serve(ctx)
		}
	}
}

type agent struct {
	Options
	latest   *corev1.ConfigMap
	requests chan struct{}
	// mu guards latest between the informer's goroutine and the serving loop.
	mu sync.Mutex
}

func (a *agent) offer(obj any) {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return
	}
	a.mu.Lock()
	a.latest = cm
	a.mu.Unlock()
	select {
	case a.requests <- struct{}{}:
	default:
	}
}

func (a *agent) serve(ctx context.Context) {
	a.mu.Lock()
	cm := a.latest
	a.mu.Unlock()
	if cm == nil {
		return
	}
	req := cm.Data[KeyTeardown]
	if req == "" {
		return
	}
	prev := ParseAnswer(cm.Data[KeyTeardownDone+a.Node])
	if prev.Request == req && prev.Error == "" && prev.Waiting == "" {
		return
	}
	answer := Answer{Request: req}
	waiting := ""
	if cm.Data[KeyTeardownSuccessor] == a.Node {
		waiting = a.successorMissing(ctx)
	}
	if waiting != "" {
		answer.Waiting = waiting
		// Asked again shortly, whatever the ConfigMap does meanwhile.
		time.AfterFunc(2*time.Second, func() { a.offer(cm) })
		if prev.String() == answer.String() {
			return
		}
	} else {
		removed, err := RemoveBootstrapPods(a.StaticPodDir)
		answer.Removed = removed
		if err != nil {
			answer.Error = err.Error()
		}
	}
	a.Logf("teardown %s: %s", req, answer)
	backoff := wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 8, Cap: 5 * time.Second}
	err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		ac := corev1ac.ConfigMap(generator.PivotRecord, Namespace).WithData(map[string]string{KeyTeardownDone + a.Node: answer.String()})
		_, err := a.Client.CoreV1().ConfigMaps(Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: "liftoff-agent-" + a.Node, Force: true})
		if err != nil {
			a.Logf("answering teardown %s: %v", req, err)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		a.Logf("teardown %s: the answer was not written; retrying at the next resync", req)
	}
}

// successorMissing says what keeps the bootstrap apiserver on this host from being removed, or "".
func (a *agent) successorMissing(ctx context.Context) string {
	if a.HostAPIServer == "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(a.StaticPodDir, generator.BootstrapPodPrefix+"kube-apiserver.yaml")); err != nil {
		return ""
	}
	servers, err := apiServersServing(ctx, a.Config, a.HostAPIServer)
	switch {
	case err != nil:
		return fmt.Sprintf("no apiserver is ready on %s: %v", a.HostAPIServer, err)
	case len(servers) < 2:
		return fmt.Sprintf("only one apiserver (started at %s) is ready on %s: its self-hosted successor is not ready yet", servers[0], a.HostAPIServer)
	}
	return ""
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

// RemoveBootstrapPods removes every bootstrap control-plane static pod (generator.BootstrapPodPrefix
// *.yaml) from dir, and nothing else, returning the names removed in order. Removing is atomic per
// file; a file already gone counts as removed by an earlier request.
func RemoveBootstrapPods(dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(dir, generator.BootstrapPodPrefix+"*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var removed []string
	var errs []error
	for _, m := range matches {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, filepath.Base(m))
	}
	return removed, errors.Join(errs...)
}
