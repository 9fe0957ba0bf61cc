package harness

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness/images"
	"github.com/liftoff-k8s/liftoff/harness/proc"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
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
	// Images are images to import into every machine beside those the render names, for the
	// workloads a test runs (pulled images would be there too).
	Images []string
}

// Cluster is a booted local cluster.
type Cluster struct {
	Dir  string
	Work string
	// APIServer is the URL clients use: the load balancer's.
	APIServer string

	machines    []*Machine
	lb          *LoadBalancer
	net         *network
	release     *releaseHost
	dns         *nameserver
	images      []images.Archive
	marker      string
	findProgram func(ctx context.Context, name string) (string, error)

	savedSysctls map[string]string
	hostLock     *os.File

	logMu  sync.Mutex
	log    *os.File
	report func(format string, args ...any)

	progMu   sync.Mutex
	programs map[string]string
	closeMu  sync.Mutex
	closed   bool
}

// Boot creates the cluster's network, lays out every machine of the rendered cluster with
// Ignition, builds the images the render names, starts the release host and the API load balancer
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
	id := make([]byte, 3)
	rand.Read(id)
	c := &Cluster{Dir: opts.Dir, Work: work, marker: hex.EncodeToString(id), findProgram: opts.Program,
		report: opts.Logf, programs: map[string]string{}}
	if c.log, err = os.OpenFile(filepath.Join(work, "harness.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	// client-go logs through klog; its complaints about a partitioned machine's watches belong
	// in the harness's log, not on the terminal.
	quietKlog(c.log)
	if c.hostLock, err = lockHost(ctx, c.logf); err != nil {
		return c, err
	}
	for _, id := range sweep(ctx) {
		c.logf("removed what cluster %s left behind when its harness died", id)
	}
	if err := claim(c.marker); err != nil {
		return c, err
	}
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
		c.machines = append(c.machines, &Machine{Name: a.Node, Role: a.Role, Root: root, c: c, index: len(c.machines),
			config: filepath.Join(c.absDir(), filepath.FromSlash(a.Path)),
			cgroup: machineCgroup{path: "/liftoff-" + c.marker + "/" + a.Node}})
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

	server, targets, err := c.apiTargets()
	if err != nil {
		return c, err
	}
	lbAddr := netip.MustParseAddrPort(server)
	prefix, gateway, err := gatewayOf(lbAddr.Addr())
	if err != nil {
		return c, err
	}
	if c.net, err = newNetwork(ctx, c.marker, prefix, []netip.Addr{gateway, lbAddr.Addr()}); err != nil {
		return c, err
	}
	for _, m := range c.machines {
		if !prefix.Contains(m.addr()) {
			return c, fmt.Errorf("machine %s: its address %s is outside the cluster's network %s (the /24 of api_server)", m.Name, m.IP, prefix)
		}
		if m.netns, err = c.net.addMachine(ctx, m.index, m.addr()); err != nil {
			return c, err
		}
	}
	c.logf("network %s on bridge %s: gateway %s, API load balancer %s", prefix, c.net.bridge, gateway, server)

	kubelet, etcd, cni, err := releaseArtifacts(ctx)
	if err != nil {
		return c, err
	}
	files := map[string]string{}
	for _, a := range []artifact{kubelet, etcd, cni} {
		for _, v := range []string{versions.Kubernetes, versions.Etcd, versions.CNIPlugins} {
			files[expandPath(a.urlPath, v)] = a.file
		}
	}
	if c.release, err = startReleaseHost(netip.AddrPortFrom(gateway, releasePort), files); err != nil {
		return c, err
	}
	if c.dns, err = startNameserver(gateway); err != nil {
		return c, err
	}
	refs, err := renderedImages(c.absDir())
	if err != nil {
		return c, err
	}
	start := time.Now()
	if c.images, err = images.Build(ctx, append(append(refs, pauseImage), opts.Images...)); err != nil {
		return c, err
	}
	c.logf("built %d images in %s", len(c.images), time.Since(start).Round(time.Millisecond))

	for _, m := range c.machines {
		if err := c.prepareOS(m); err != nil {
			return c, fmt.Errorf("machine %s: %w", m.Name, err)
		}
	}
	if err := c.hostPrerequisites(); err != nil {
		return c, err
	}
	if err := c.applySysctls(ctx); err != nil {
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

// pauseImage is the sandbox image of the machines' containerd, as the OS image configures it.
var pauseImage = "registry.k8s.io/pause:" + versions.Pause

// imagesDigest identifies the set of images the cluster runs.
func (c *Cluster) imagesDigest() string {
	h := sha256.New()
	for _, a := range c.images {
		fmt.Fprintln(h, a.Ref, a.Digest)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// renderedImages lists every image the rendered static pods and manifests name.
func renderedImages(dir string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n") {
			v, ok := strings.CutPrefix(strings.TrimLeft(strings.TrimSpace(l), "- "), "image:")
			if !ok {
				continue
			}
			ref := strings.Trim(strings.TrimSpace(v), `"'`)
			if ref != "" && !seen[ref] {
				seen[ref] = true
				out = append(out, ref)
			}
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func (c *Cluster) absDir() string {
	d, _ := filepath.Abs(c.Dir)
	return d
}

// apiTargets reads the API address (the server of the render's admin kubeconfig, which machines
// use too) and the controllers' apiserver addresses behind it.
func (c *Cluster) apiTargets() (string, []string, error) {
	cfg, err := clientcmd.LoadFromFile(filepath.Join(c.absDir(), bootstrap.AdminKubeconfig))
	if err != nil {
		return "", nil, err
	}
	var server string
	for _, cl := range cfg.Clusters {
		server = cl.Server
	}
	u, err := url.Parse(server)
	if err != nil || u.Port() == "" {
		return "", nil, fmt.Errorf("the API address %q has no port", server)
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		return "", nil, fmt.Errorf("the cluster's api_server %s is not an IP address: the harness's load balancer listens on it (use a spec like harness/testdata/cluster.hcl)", server)
	}
	port, _ := strconv.Atoi(u.Port())
	var targets []string
	for _, m := range c.machines {
		// A bootstrap machine serves the API until the pivot is done, as it would behind a real
		// load balancer.
		if m.Role == spec.RoleController || m.Role == spec.RoleBootstrap {
			targets = append(targets, netip.AddrPortFrom(m.addr(), uint16(port)).String())
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

// SuperAdminConfig is a client configuration from the break-glass kubeconfig (system:masters),
// the one credential that may call the API before `liftoff bootstrap` binds the admins' group.
func (c *Cluster) SuperAdminConfig() (*rest.Config, error) {
	return clientcmd.BuildConfigFromFlags("", filepath.Join(c.absDir(), bootstrap.SuperAdminKubeconfig))
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
	c.release.close()
	c.dns.close()
	c.restoreSysctls()
	var errs []error
	if c.net != nil {
		errs = append(errs, c.net.remove())
	}
	for _, m := range c.machines {
		// A machine that never powered on, or failed to, may still hold its cgroups.
		m.cgroup.kill()
		m.cgroup.remove()
	}
	errs = append(errs, c.checkLeftovers())
	release(c.marker)
	if c.hostLock != nil {
		c.hostLock.Close()
	}
	c.logf("cluster closed")
	klog.Flush()
	loudKlog()
	if c.log != nil {
		c.log.Close()
	}
	return errors.Join(errs...)
}

// checkLeftovers proves that nothing the harness started survives: no process of a machine or
// marked by the harness, no mount under the work directory, no cgroup, namespace, link or rule.
func (c *Cluster) checkLeftovers() error {
	var problems []string
	for _, m := range c.machines {
		for _, pid := range m.cgroup.pids() {
			problems = append(problems, m.Name+" process "+proc.Describe(pid))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
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
	problems = append(problems, removeClusterCgroups("/liftoff-"+c.marker)...)
	if c.net != nil {
		problems = append(problems, c.net.leftovers()...)
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
