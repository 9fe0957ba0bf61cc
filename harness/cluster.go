package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness/proc"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// Options configure a Boot.
type Options struct {
	// Dir is the rendered output directory of the cluster.
	Dir string
	// Work is where the machines' roots and logs go; it is created if needed.
	Work string
	// Logf receives what the harness does; nil discards it. Everything also goes to Work/harness.log.
	Logf func(format string, args ...any)
	// Program returns the path of a real program by name ("etcd", "kube-apiserver", "liftoff",
	// ...); testbin.Path, and a build of ./cmd/liftoff for "liftoff", when nil.
	Program func(ctx context.Context, name string) (string, error)
}

// Cluster is a booted local cluster.
type Cluster struct {
	Dir  string
	Work string
	// APIServer is the URL clients use: the load balancer's.
	APIServer string

	machines    []*Machine
	lb          *LoadBalancer
	marker      string
	findProgram func(ctx context.Context, name string) (string, error)

	logMu  sync.Mutex
	log    *os.File
	report func(format string, args ...any)

	progMu   sync.Mutex
	programs map[string]string
	closeMu  sync.Mutex
	closed   bool
}

// Boot lays out every machine of the rendered cluster with Ignition, starts the API load balancer
// and powers every machine on. It returns once all machines run; the cluster then comes up on its
// own (etcd, static pods) and joins as the API allows (TLS bootstrap needs bootstrap's manifests).
// Close the cluster even when Boot fails.
func Boot(ctx context.Context, opts Options) (*Cluster, error) {
	if err := os.MkdirAll(opts.Work, 0o755); err != nil {
		return nil, err
	}
	work, err := filepath.Abs(opts.Work)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 8)
	rand.Read(id)
	c := &Cluster{Dir: opts.Dir, Work: work, marker: hex.EncodeToString(id), findProgram: opts.Program,
		report: opts.Logf, programs: map[string]string{}}
	if c.log, err = os.OpenFile(filepath.Join(work, "harness.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	// client-go logs through klog; its complaints about a partitioned kubelet's watches belong
	// in the harness's log, not on the terminal.
	quietKlog(c.log)
	assets, err := outdir.Read(opts.Dir)
	if err != nil {
		return c, err
	}
	for _, a := range assets.Files {
		if a.Kind != generator.KindIgnition {
			continue
		}
		root := filepath.Join(work, "machines", a.Node, "root")
		if _, err := os.Stat(root); err == nil {
			return c, fmt.Errorf("%s already exists: machines are laid out once; use a new work directory", root)
		}
		if err := os.MkdirAll(root, 0o755); err != nil {
			return c, err
		}
		c.machines = append(c.machines, &Machine{Name: a.Node, Role: a.Role, Root: root, c: c,
			config: filepath.Join(c.absDir(), filepath.FromSlash(a.Path))})
	}
	if len(c.machines) == 0 {
		return c, fmt.Errorf("%s holds no Ignition configs", opts.Dir)
	}
	ignition, err := c.program(ctx, "ignition")
	if err != nil {
		return c, err
	}
	errs := make([]error, len(c.machines))
	var wg sync.WaitGroup
	for i, m := range c.machines {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = m.provision(ctx, ignition) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.logf("laid out %d machines with Ignition under %s", len(c.machines), filepath.Join(work, "machines"))

	// Programs are found (or built) before any machine needs them, so a boot does not stall on a build.
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		if _, err := c.program(ctx, name); err != nil {
			return c, err
		}
	}

	server, targets, err := c.apiTargets()
	if err != nil {
		return c, err
	}
	c.APIServer = "https://" + server
	if c.lb, err = StartLoadBalancer(server, targets); err != nil {
		return c, err
	}
	c.logf("API load balancer on %s forwards to %s", server, strings.Join(targets, ", "))
	for _, m := range c.machines {
		if err := m.PowerOn(); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *Cluster) absDir() string {
	d, _ := filepath.Abs(c.Dir)
	return d
}

// apiTargets reads the API address machines use (their bootstrap kubeconfig's server) and the
// controllers' apiserver addresses behind it.
func (c *Cluster) apiTargets() (string, []string, error) {
	m := c.machines[0]
	cfg, err := clientcmd.LoadFromFile(m.host(generator.HostBootstrapKubeletConf))
	if err != nil {
		return "", nil, fmt.Errorf("machine %s: %w", m.Name, err)
	}
	var server string
	for _, cl := range cfg.Clusters {
		server = cl.Server
	}
	u, err := url.Parse(server)
	if err != nil || u.Port() == "" {
		return "", nil, fmt.Errorf("machine %s: the API address %q has no port", m.Name, server)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		return "", nil, fmt.Errorf("the cluster's api_server %s is not a loopback address: the harness's load balancer listens on this host's loopback (use a spec like harness/testdata/cluster.hcl)", server)
	}
	var targets []string
	for _, m := range c.machines {
		if m.Role == "controller" {
			targets = append(targets, net.JoinHostPort(m.IP, u.Port()))
		}
	}
	return u.Host, targets, nil
}

// Machines returns the machines, controllers first.
func (c *Cluster) Machines() []*Machine {
	out := append([]*Machine{}, c.machines...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Role == "controller" && out[j].Role != "controller" })
	return out
}

// Machine returns the named machine, or nil.
func (c *Cluster) Machine(name string) *Machine {
	for _, m := range c.machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Controllers returns the controller machines.
func (c *Cluster) Controllers() []*Machine {
	var out []*Machine
	for _, m := range c.machines {
		if m.Role == "controller" {
			out = append(out, m)
		}
	}
	return out
}

// LoadBalancer returns the API load balancer.
func (c *Cluster) LoadBalancer() *LoadBalancer { return c.lb }

// AdminKubeconfig is the rendered admin kubeconfig, which points at the load balancer.
func (c *Cluster) AdminKubeconfig() string {
	return filepath.Join(c.absDir(), generator.OutAuthDir, "admin.conf")
}

// AdminConfig is a client configuration from the rendered admin kubeconfig.
func (c *Cluster) AdminConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", c.AdminKubeconfig())
}

// Close powers every machine off, stops the load balancer and checks that no process the harness
// started is still alive; any that is gets killed and named in the error.
func (c *Cluster) Close() error {
	c.closeMu.Lock()
	if c.closed {
		c.closeMu.Unlock()
		return nil
	}
	c.closed = true
	c.closeMu.Unlock()
	var wg sync.WaitGroup
	for _, m := range c.machines {
		wg.Add(1)
		go func() { defer wg.Done(); m.Stop() }()
	}
	wg.Wait()
	if c.lb != nil {
		c.lb.Close()
	}
	err := c.checkLeftovers()
	c.logf("cluster closed")
	klog.Flush()
	loudKlog()
	if c.log != nil {
		c.log.Close()
	}
	return err
}

// checkLeftovers proves that nothing the harness started survives: no marked process, no mount
// under the work directory.
func (c *Cluster) checkLeftovers() error {
	var problems []string
	for _, pid := range proc.Marked(c.marker) {
		problems = append(problems, "process "+proc.Describe(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(mounts), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], c.Work+"/") {
				problems = append(problems, "mount "+f[4])
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the harness left behind: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Leftovers lists the processes the harness started that are alive now.
func (c *Cluster) Leftovers() []int { return proc.Marked(c.marker) }

func (c *Cluster) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.logMu.Lock()
	if c.log != nil {
		fmt.Fprintf(c.log, "%s %s\n", time.Now().Format("15:04:05.000"), msg)
	}
	c.logMu.Unlock()
	if c.report != nil {
		c.report("%s", msg)
	}
}

// program returns a real program by name, finding (or building) it once.
func (c *Cluster) program(ctx context.Context, name string) (string, error) {
	c.progMu.Lock()
	defer c.progMu.Unlock()
	if p, ok := c.programs[name]; ok {
		return p, nil
	}
	var p string
	var err error
	switch {
	case c.findProgram != nil:
		p, err = c.findProgram(ctx, name)
	case name == "liftoff":
		p, err = buildLiftoff(ctx, filepath.Join(c.Work, "bin"))
	default:
		p, err = testbin.Path(ctx, name)
		if err != nil {
			err = fmt.Errorf("%w\nBuild the real programs with `make binaries`", err)
		}
	}
	if err != nil {
		return "", err
	}
	c.programs[name] = p
	return p, nil
}

// componentImages maps the repository name of the images the harness runs to the programs
// each holds (the first is the image's entrypoint).
var componentImages = map[string][]string{
	"kube-apiserver":          {"kube-apiserver"},
	"kube-controller-manager": {"kube-controller-manager"},
	"kube-scheduler":          {"kube-scheduler"},
	"etcd":                    {"etcd", "etcdctl", "etcdutl"},
	"liftoff":                 {"liftoff"},
}

// imageProgram is the kubelet's view of the harness's programs: which real program runs a
// container of an image, "" for images the harness does not run.
func (c *Cluster) imageProgram(ctx context.Context, image, command string) (string, error) {
	programs, ok := componentImages[imageRepository(image)]
	if !ok {
		return "", nil
	}
	name := programs[0]
	if command != "" {
		name = path.Base(command)
		found := false
		for _, p := range programs {
			found = found || p == name
		}
		if !found {
			return "", fmt.Errorf("image %s runs as %s; the liftoff harness runs only %s from it", image, command, strings.Join(programs, ", "))
		}
	}
	return c.program(ctx, name)
}

// imageRepository returns the last path element of an image reference without tag or digest:
// "registry.k8s.io/kube-apiserver:v1.35.4" -> "kube-apiserver".
func imageRepository(image string) string {
	image, _, _ = strings.Cut(image, "@")
	last := image[strings.LastIndex(image, "/")+1:]
	name, _, _ := strings.Cut(last, ":")
	return name
}

// buildLiftoff builds liftoff's own command from the module this harness belongs to.
func buildLiftoff(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "liftoff")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/liftoff-k8s/liftoff/cmd/liftoff")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building liftoff for its image: %w\n%s", err, log.String())
	}
	return out, nil
}

// quietKlog sends klog's output (client-go's) to w only; loudKlog restores its defaults.
func quietKlog(w io.Writer) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "false")
	fs.Set("alsologtostderr", "false")
	fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(w)
}

func loudKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	fs.Set("logtostderr", "true")
	fs.Set("stderrthreshold", "ERROR")
	klog.SetOutput(os.Stderr)
}
