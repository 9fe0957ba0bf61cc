package harness

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// Machine is one machine of the cluster: a root directory laid out by Ignition (its disk), a
// network namespace with the machine's address (its NIC), and, while it is on, a mount and UTS
// namespace in which the machine's own directories cover the host's, and the processes of its
// units, all in one cgroup tree.
type Machine struct {
	Name string
	Role string
	// IP is the machine's address (NODE_IP of its kubelet.env).
	IP string
	// Root is the machine's root directory: its disk, which survives reboots.
	Root string

	c      *Cluster
	index  int
	config string // its rendered Ignition config
	netns  string
	cgroup machineCgroup

	mu     sync.Mutex
	state  machineState
	boots  int
	holder *proc.Process
	cancel context.CancelFunc
	done   chan struct{}
}

type machineState int

const (
	machineOff machineState = iota
	machineOn
	machineStopped
)

// machineDirs are the machine's own directories that cover the host's inside its mount
// namespace; everything else (/usr, the host's programs) is shared, as an immutable OS's /usr is.
var machineDirs = []string{"/etc", "/opt", "/var/lib", "/var/log"}

// host maps a path on the machine into its root.
func (m *Machine) host(p string) string {
	return filepath.Join(m.Root, filepath.FromSlash(p))
}

// provision lays out the machine's root from its Ignition config, reads its address and adds what
// the OS image would provide.
func (m *Machine) provision(ctx context.Context, ignition string) error {
	if err := applyIgnition(ctx, ignition, m.config, m.Root, filepath.Join(filepath.Dir(m.Root), "ignition")); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	env, err := readEnvironmentFile(m.host(path.Join(generator.HostKubernetesDir, "kubelet.env")))
	if err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	if m.IP = env["NODE_IP"]; m.IP == "" {
		return fmt.Errorf("machine %s: kubelet.env has no NODE_IP", m.Name)
	}
	return nil
}

// PowerOn boots the machine: a fresh mount namespace with an empty /run and /tmp, then every
// enabled unit and what it requires, in order.
func (m *Machine) PowerOn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case machineOn:
		return nil
	case machineStopped:
		return fmt.Errorf("machine %s was stopped for good", m.Name)
	}
	if err := m.cgroup.create(); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	m.boots++
	holder, err := m.startHolder()
	if err != nil {
		m.cgroup.kill()
		m.cgroup.remove()
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	m.state, m.holder, m.cancel, m.done = machineOn, holder, cancel, done
	go func() {
		defer close(done)
		if err := m.runUnits(ctx); err != nil && ctx.Err() == nil {
			m.c.logf("%s: %v", m.Name, err)
		}
	}()
	m.c.logf("%s: powered on (boot %d)", m.Name, m.boots)
	return nil
}

// startHolder starts the process that holds the machine's mount and UTS namespaces: it joins the
// machine's cgroup, enters its network namespace, names the host, mounts the machine's directories
// over the host's, and then waits. Every unit process enters its namespaces.
func (m *Machine) startHolder() (*proc.Process, error) {
	join, err := m.cgroup.joinScript()
	if err != nil {
		return nil, err
	}
	// The holder says it is ready on its output, which stays open across its mounts.
	const ready = "liftoff-machine-ready"
	logPath := filepath.Join(m.c.Work, "machines", m.Name, "namespaces-"+strconv.Itoa(m.boots)+".log")
	var script strings.Builder
	script.WriteString("set -e; " + join)
	fmt.Fprintf(&script, "hostname %s; ", m.Name)
	for _, d := range machineDirs {
		fmt.Fprintf(&script, "mkdir -p %s; mount --bind %s %s; ", m.host(d), m.host(d), d)
	}
	// /run and /tmp are empty at every boot, as on a real machine.
	script.WriteString("mount -t tmpfs -o mode=0755 tmpfs /run; mount -t tmpfs -o mode=1777 tmpfs /tmp; ")
	script.WriteString("mkdir -p /run/lock /run/systemd/resolve; cp /etc/resolv.conf /run/systemd/resolve/resolv.conf; ")
	script.WriteString(bootScript)
	fmt.Fprintf(&script, "echo %s; exec sleep infinity", ready)
	p, err := proc.Start(proc.Spec{
		Name:   m.Name + "/namespaces",
		Path:   "/usr/bin/unshare",
		Args:   []string{"--mount", "--uts", "--propagation", "slave", "/usr/bin/nsenter", "--net=" + m.netns, "/bin/sh", "-c", script.String()},
		Env:    []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Log:    logPath,
		Marker: m.c.marker,
	})
	if err != nil {
		return nil, err
	}
	for {
		if log, _ := os.ReadFile(logPath); strings.Contains(string(log), ready) {
			return p, nil
		}
		select {
		case <-p.Done():
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("setting up the machine's namespaces: %s: %s", p.ExitReason(), lastLines(string(log), 10))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// command is a process of the machine: argv run inside the machine's namespaces and cgroup.
func (m *Machine) command(name string, argv, env []string, logName string) (proc.Spec, error) {
	join, err := m.cgroup.joinScript()
	if err != nil {
		return proc.Spec{}, err
	}
	m.mu.Lock()
	holder := m.holder
	m.mu.Unlock()
	if holder == nil {
		return proc.Spec{}, fmt.Errorf("machine %s is off", m.Name)
	}
	args := append([]string{"--target", strconv.Itoa(holder.Pid()), "--mount", "--uts", "--net", "--",
		"/bin/sh", "-c", join + `exec "$@"`, "liftoff-unit"}, argv...)
	return proc.Spec{
		Name:   m.Name + "/" + name,
		Path:   "/usr/bin/nsenter",
		Args:   args,
		Env:    append([]string{"PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}, env...),
		Log:    m.host("/var/log/liftoff-harness/" + logName + ".log"),
		Marker: m.c.marker,
	}, nil
}

// Exec runs a command on the machine (inside its namespaces) and returns its output.
func (m *Machine) Exec(ctx context.Context, argv ...string) (string, error) {
	spec, err := m.command("exec", argv, nil, "exec")
	if err != nil {
		return "", err
	}
	out, err := runOutput(ctx, spec.Path, spec.Env, spec.Args...)
	if err != nil {
		return out, fmt.Errorf("%s: %s: %w: %s", m.Name, strings.Join(argv, " "), err, out)
	}
	return out, nil
}

// PowerOff cuts the machine's power: every process and container dies at once; the root stays.
func (m *Machine) PowerOff() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powerOffLocked()
}

func (m *Machine) powerOffLocked() {
	if m.state != machineOn {
		return
	}
	m.cancel()
	if err := m.cgroup.kill(); err != nil {
		m.c.logf("%s: %v", m.Name, err)
	}
	m.holder.Kill()
	m.mu.Unlock()
	<-m.done
	m.mu.Lock()
	if err := m.cgroup.remove(); err != nil {
		m.c.logf("%s: %v", m.Name, err)
	}
	m.state, m.holder = machineOff, nil
	m.c.logf("%s: powered off", m.Name)
}

// Reboot powers the machine off and on again.
func (m *Machine) Reboot() error {
	m.PowerOff()
	return m.PowerOn()
}

// Stop powers the machine off for good.
func (m *Machine) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.powerOffLocked()
	m.state = machineStopped
}

// Partition drops (true) or passes again (false) every packet of the machine's network
// interface. Its processes keep running.
func (m *Machine) Partition(on bool) error {
	if err := m.c.net.partition(context.Background(), m.netns, on); err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	m.c.logf("%s: partitioned: %v", m.Name, on)
	return nil
}

// Running reports whether the machine is powered on.
func (m *Machine) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == machineOn
}

// KillContainer kills a container's processes on this machine with SIGKILL, as a crash would. pod
// is the pod's name in the API (for a static pod, NAME-MACHINE).
func (m *Machine) KillContainer(ctx context.Context, namespace, pod, container string) error {
	out, err := m.Exec(ctx, "ctr", "--address", containerdSocket, "-n", "k8s.io", "containers", "ls", "-q",
		"labels.\"io.kubernetes.pod.namespace\"=="+namespace+",labels.\"io.kubernetes.pod.name\"=="+pod+",labels.\"io.kubernetes.container.name\"=="+container)
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return fmt.Errorf("machine %s runs no container %s of pod %s/%s", m.Name, container, namespace, pod)
	}
	var errs []error
	killed := 0
	for _, id := range ids {
		// Exited containers stay listed until removed; only a running task can be killed.
		if _, err := m.Exec(ctx, "ctr", "--address", containerdSocket, "-n", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			if strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "process already finished") {
				continue
			}
			errs = append(errs, err)
			continue
		}
		killed++
	}
	if killed == 0 && len(errs) == 0 {
		return fmt.Errorf("machine %s: container %s of pod %s/%s is not running", m.Name, container, namespace, pod)
	}
	return errors.Join(errs...)
}

// addr is the machine's address.
func (m *Machine) addr() netip.Addr {
	a, _ := netip.ParseAddr(m.IP)
	return a
}

// ReadFile reads a file of the machine as the machine sees it: absolute symbolic links (such as
// the kubelet's kubelet-client-current.pem) resolve inside the machine's root.
func (m *Machine) ReadFile(p string) ([]byte, error) {
	for range 40 {
		target, err := os.Readlink(m.host(p))
		if err != nil {
			return os.ReadFile(m.host(p))
		}
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(p), target)
		}
		p = target
	}
	return nil, fmt.Errorf("machine %s: %s: too many levels of symbolic links", m.Name, p)
}
