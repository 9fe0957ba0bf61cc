package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// Version is the kubelet version the stand-in reports for its Node.
const Version = "v1.35.4"

// Flags are the real kubelet's command-line flags the stand-in understands. Paths are as seen on
// the machine (absolute, inside its root).
type Flags struct {
	BootstrapKubeconfig string
	Kubeconfig          string
	Config              string
	CertDir             string
	NodeIP              string
	HostnameOverride    string
	NodeLabels          map[string]string
	RegisterWithTaints  []corev1.Taint
}

// ParseFlags reads a kubelet command line (without the program name). Flags the stand-in does not
// know are an error, so that a change to the rendered unit is noticed rather than ignored.
func ParseFlags(args []string) (Flags, error) {
	f := Flags{CertDir: "/var/lib/kubelet/pki", NodeLabels: map[string]string{}}
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			return f, fmt.Errorf("kubelet flag %q: the stand-in takes --name=value flags only", a)
		}
		switch name {
		case "bootstrap-kubeconfig":
			f.BootstrapKubeconfig = value
		case "kubeconfig":
			f.Kubeconfig = value
		case "config":
			f.Config = value
		case "cert-dir":
			f.CertDir = value
		case "node-ip":
			f.NodeIP = value
		case "hostname-override":
			f.HostnameOverride = value
		case "node-labels":
			for _, kv := range splitList(value) {
				k, v, _ := strings.Cut(kv, "=")
				f.NodeLabels[k] = v
			}
		case "register-with-taints":
			for _, s := range splitList(value) {
				t, err := parseTaint(s)
				if err != nil {
					return f, fmt.Errorf("--register-with-taints: %w", err)
				}
				f.RegisterWithTaints = append(f.RegisterWithTaints, t)
			}
		default:
			return f, fmt.Errorf("kubelet flag --%s is not understood by the harness's kubelet stand-in", name)
		}
	}
	switch {
	case f.Kubeconfig == "":
		return f, errors.New("kubelet: --kubeconfig is required")
	case f.Config == "":
		return f, errors.New("kubelet: --config is required")
	case f.HostnameOverride == "":
		return f, errors.New("kubelet: --hostname-override is required (the stand-in does not use the host's name)")
	case f.NodeIP == "":
		return f, errors.New("kubelet: --node-ip is required (the stand-in does not guess addresses)")
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseTaint reads key[=value]:Effect.
func parseTaint(s string) (corev1.Taint, error) {
	kv, effect, ok := strings.Cut(s, ":")
	if !ok {
		return corev1.Taint{}, fmt.Errorf("taint %q has no effect", s)
	}
	k, v, _ := strings.Cut(kv, "=")
	switch e := corev1.TaintEffect(effect); e {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		return corev1.Taint{Key: k, Value: v, Effect: e}, nil
	}
	return corev1.Taint{}, fmt.Errorf("taint %q has an unknown effect", s)
}

// Machine is what the kubelet gets from the machine it runs on.
type Machine struct {
	// Root is the machine's root directory; every path the kubelet reads or writes is inside it.
	Root string
	// Dial opens the kubelet's connections to the API. A partitioned machine's Dial fails.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Program returns the real program that runs a container of image whose command starts with
	// command ("" when the container has none), or "" when the harness does not run the image.
	// An image the harness runs with a command it cannot run is an error.
	Program func(ctx context.Context, image, command string) (string, error)
	// Marker tags every process the kubelet starts (see proc.MarkerEnv).
	Marker string
	// BootID changes at every boot of the machine.
	BootID string
	// Logf reports what the kubelet does.
	Logf func(format string, args ...any)
}

// Kubelet is one machine's kubelet stand-in.
type Kubelet struct {
	flags  Flags
	config kubeletv1beta1.KubeletConfiguration
	m      Machine
	name   string

	mu      sync.Mutex
	client  kubernetes.Interface
	node    *corev1.Node
	podCIDR string

	pods *podManager
}

// New reads the kubelet's configuration file from the machine's root.
func New(flags Flags, m Machine) (*Kubelet, error) {
	k := &Kubelet{flags: flags, m: m, name: flags.HostnameOverride}
	raw, err := os.ReadFile(k.host(flags.Config))
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: reading --config: %w", k.name, err)
	}
	if err := yaml.UnmarshalStrict(raw, &k.config); err != nil {
		return nil, fmt.Errorf("kubelet %s: %s: %w", k.name, flags.Config, err)
	}
	if k.config.Kind != "KubeletConfiguration" {
		return nil, fmt.Errorf("kubelet %s: %s holds a %q, not a KubeletConfiguration", k.name, flags.Config, k.config.Kind)
	}
	if m.Logf == nil {
		k.m.Logf = func(string, ...any) {}
	}
	k.pods = newPodManager(k)
	return k, nil
}

// Name is the kubelet's node name.
func (k *Kubelet) Name() string { return k.name }

// host maps a path on the machine into the machine's root.
func (k *Kubelet) host(p string) string {
	return filepath.Join(k.m.Root, filepath.FromSlash(p))
}

func (k *Kubelet) logf(format string, args ...any) {
	k.m.Logf("kubelet "+k.name+": "+format, args...)
}

// Run runs the kubelet until ctx ends, then kills every container it started (as a power loss
// would) and returns once they are gone. A Kubelet runs once: a machine that boots again gets a
// new one.
func (k *Kubelet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.pods.run(ctx) }()
	go func() { defer wg.Done(); k.watchStaticPods(ctx) }()

	err := k.join(ctx)
	if err == nil {
		wg.Add(4)
		go func() { defer wg.Done(); k.heartbeat(ctx) }()
		go func() { defer wg.Done(); k.watchNode(ctx) }()
		go func() { defer wg.Done(); k.watchAPIPods(ctx) }()
		go func() { defer wg.Done(); k.pods.syncStatus(ctx) }()
		<-ctx.Done()
	}
	cancel()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// join gets the kubelet's client credentials (through TLS bootstrap if it has none) and registers
// its Node, retrying until it succeeds or ctx ends.
func (k *Kubelet) join(ctx context.Context) error {
	client, err := k.credentials(ctx)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.client = client
	k.mu.Unlock()
	return k.register(ctx)
}

// apiClient returns the kubelet's client once it has joined, or nil.
func (k *Kubelet) apiClient() kubernetes.Interface {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.client
}

// retry runs f with backoff until it succeeds or ctx ends, reporting a changed error once.
func (k *Kubelet) retry(ctx context.Context, what string, f func() error) error {
	delay := 250 * time.Millisecond
	last := ""
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		if err.Error() != last {
			k.logf("%s: %v (retrying)", what, err)
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
