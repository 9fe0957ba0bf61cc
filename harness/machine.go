package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness/kubelet"
)

// Machine is one machine of the cluster: a root directory laid out by Ignition, a loopback
// address, and the processes of its running units.
type Machine struct {
	Name string
	Role string
	// IP is the machine's address (NODE_IP of its kubelet.env).
	IP string
	// Root is the machine's root directory: its disk, which survives reboots.
	Root string

	c      *Cluster
	config string // its rendered Ignition config
	uplink *uplink

	mu      sync.Mutex
	state   machineState
	boots   int
	cancel  context.CancelFunc
	done    chan struct{}
	kubelet *kubelet.Kubelet
}

type machineState int

const (
	machineOff machineState = iota
	machineOn
	machineStopped
)

// host maps a path on the machine into its root.
func (m *Machine) host(p string) string {
	return filepath.Join(m.Root, filepath.FromSlash(p))
}

// provision lays out the machine's root from its Ignition config and reads its address.
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
	m.uplink = newUplink(m.IP)
	return nil
}

// PowerOn boots the machine: /run is emptied, and every enabled unit the harness knows starts.
func (m *Machine) PowerOn() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.state {
	case machineOn:
		return nil
	case machineStopped:
		return fmt.Errorf("machine %s was stopped for good", m.Name)
	}
	if err := os.RemoveAll(m.host("/run")); err != nil {
		return err
	}
	if err := os.MkdirAll(m.host(runDir), 0o755); err != nil {
		return err
	}
	units, err := enabledUnits(m.Root)
	if err != nil {
		return err
	}
	m.boots++
	bootID := make([]byte, 16)
	rand.Read(bootID)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, name := range units {
		u, err := readUnit(m.Root, name)
		if err != nil {
			cancel()
			return fmt.Errorf("machine %s: %w", m.Name, err)
		}
		var run func(context.Context) error
		switch name {
		case "etcd.service":
			run = func(ctx context.Context) error { return m.runEtcd(ctx, u) }
		case "kubelet.service":
			k, err := m.newKubelet(u, hex.EncodeToString(bootID))
			if err != nil {
				cancel()
				return err
			}
			m.kubelet = k
			run = k.Run
		default:
			m.c.logf("%s: unit %s is enabled but not run by the harness", m.Name, name)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && ctx.Err() == nil {
				m.c.logf("%s: %s failed: %v", m.Name, name, err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	m.state, m.cancel, m.done = machineOn, cancel, done
	m.c.logf("%s: powered on (boot %d)", m.Name, m.boots)
	return nil
}

func (m *Machine) newKubelet(u *unit, bootID string) (*kubelet.Kubelet, error) {
	if len(u.ExecStart) == 0 || path.Base(u.ExecStart[0]) != "kubelet" {
		return nil, fmt.Errorf("machine %s: kubelet.service runs %v, not the kubelet", m.Name, u.ExecStart)
	}
	flags, err := kubelet.ParseFlags(u.ExecStart[1:])
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", m.Name, err)
	}
	return kubelet.New(flags, kubelet.Machine{
		Root:    m.Root,
		Dial:    m.uplink.dial,
		Program: m.c.imageProgram,
		Marker:  m.c.marker,
		BootID:  bootID,
		Logf:    m.c.logf,
	})
}

// PowerOff cuts the machine's power: every process dies at once; the root stays.
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
	<-m.done
	m.state, m.kubelet = machineOff, nil
	m.uplink.setPartitioned(false)
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

// Partition cuts (true) or restores (false) the machine's connections to the API. Its processes
// keep running; its kubelet can no longer reach any apiserver.
func (m *Machine) Partition(on bool) {
	m.uplink.setPartitioned(on)
	m.c.logf("%s: partitioned from the API: %v", m.Name, on)
}

// Running reports whether the machine is powered on.
func (m *Machine) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state == machineOn
}

// KillContainer kills a container's process on this machine, as a crash would. pod is the pod's
// name in the API (for a static pod, NAME-MACHINE).
func (m *Machine) KillContainer(namespace, pod, container string) error {
	m.mu.Lock()
	k := m.kubelet
	m.mu.Unlock()
	if k == nil {
		return errors.New("machine " + m.Name + " runs no kubelet")
	}
	return k.KillContainer(namespace, pod, container)
}
