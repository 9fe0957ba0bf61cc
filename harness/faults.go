package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Kill sends SIGKILL to every process of the machine whose program is name (the base name of its
// first argument: "kube-apiserver", "etcd"), as a crash would, and returns their process IDs. The
// machine's supervisors react as they would to a crash: the kubelet restarts a container, the
// harness's systemd a unit with Restart=always.
func (m *Machine) Kill(name string) ([]int, error) {
	if !m.Running() {
		return nil, fmt.Errorf("machine %s is off", m.Name)
	}
	var killed []int
	var errs []error
	for _, pid := range m.cgroup.pids() {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		argv0, _, _ := strings.Cut(string(cmdline), "\x00")
		if filepath.Base(argv0) != name {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("killing %s (pid %d): %w", name, pid, err))
			continue
		}
		killed = append(killed, pid)
	}
	if len(killed) == 0 && len(errs) == 0 {
		return nil, fmt.Errorf("machine %s runs no process %s", m.Name, name)
	}
	if len(killed) > 0 {
		m.c.logf("%s: killed %s (pids %v)", m.Name, name, killed)
	}
	return killed, errors.Join(errs...)
}

// CutPort drops (true) or passes again (false) every TCP packet that arrives at the machine for
// port, from other machines and from the machine itself: what listens there keeps running, and
// whoever talks to it (connected already or not) hears nothing, as when a network fault separates
// them. CutPort(generator.EtcdClientPort, true) on every controller cuts etcd off from the
// apiservers while its members keep their quorum over their peer port.
func (m *Machine) CutPort(port int, on bool) error {
	table := "liftoff_cut_" + strconv.Itoa(port)
	var err error
	if on {
		// Before connection tracking (priority -400), so that established connections stall too.
		rules := fmt.Sprintf(`table inet %s {
	chain in { type filter hook prerouting priority -400; policy accept; tcp dport %d drop; }
}
`, table, port)
		err = runInput(context.Background(), rules, "nsenter", "--net="+m.netns, "nft", "-f", "-")
	} else {
		err = run(context.Background(), "nsenter", "--net="+m.netns, "nft", "delete", "table", "inet", table)
	}
	if err != nil {
		return fmt.Errorf("machine %s: %w", m.Name, err)
	}
	m.c.logf("%s: port %d cut: %v", m.Name, port, on)
	return nil
}
