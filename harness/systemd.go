package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// The harness plays systemd for a machine: it starts the enabled units and what they Require or
// Want, each after the units it is ordered After, runs ExecStartPre lines and one-shot units to
// completion, honours ConditionPathExists, and restarts units with Restart=always or on-failure.
// Units the machine does not have (targets such as network-online.target) count as active; the
// OS's own units (containerd.service) come from osUnits. Type=notify is treated as simple: the
// harness does not wait for readiness notifications.

// unitRun is the state of one unit during a boot.
type unitRun struct {
	u *unit
	// started is closed once the unit is active (a one-shot unit: once it exited); ok says whether
	// it got there.
	started chan struct{}
	ok      bool
}

// runUnits starts the machine's units and supervises them until ctx ends.
func (m *Machine) runUnits(ctx context.Context) error {
	enabled, err := enabledUnits(m.Root)
	if err != nil {
		return err
	}
	runs := map[string]*unitRun{}
	var load func(name string) error
	load = func(name string) error {
		if _, ok := runs[name]; ok {
			return nil
		}
		u, err := m.loadUnit(name)
		if err != nil {
			return err
		}
		if u == nil {
			return nil // not a service of this machine: counts as active
		}
		runs[name] = &unitRun{u: u, started: make(chan struct{})}
		for _, dep := range append(append([]string{}, u.Requires...), u.Wants...) {
			if err := load(dep); err != nil {
				return err
			}
		}
		return nil
	}
	for _, name := range enabled {
		if err := load(name); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.runUnit(ctx, r, runs)
		}()
	}
	wg.Wait()
	return nil
}

// loadUnit reads a unit from the machine's /etc/systemd/system or the OS's units; nil when the
// machine has no such service.
func (m *Machine) loadUnit(name string) (*unit, error) {
	if text, ok := osUnits[name]; ok {
		return parseUnit(m.Root, name, text)
	}
	if !strings.HasSuffix(name, ".service") {
		return nil, nil
	}
	if _, err := os.Stat(m.host("/etc/systemd/system/" + name)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	u, err := readUnit(m.Root, name)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", m.Name, err)
	}
	return u, nil
}

// runUnit waits for the units r is ordered after, then runs it as its Type and Restart say.
func (m *Machine) runUnit(ctx context.Context, r *unitRun, runs map[string]*unitRun) {
	u := r.u
	defer func() {
		select {
		case <-r.started:
		default:
			close(r.started)
		}
	}()
	for _, dep := range u.After {
		d, ok := runs[dep]
		if !ok {
			continue
		}
		select {
		case <-d.started:
		case <-ctx.Done():
			return
		}
		if !d.ok && slices.Contains(u.Requires, dep) {
			m.c.logf("%s: %s not started: it requires %s, which failed", m.Name, u.Name, dep)
			return
		}
	}
	for _, c := range u.Conditions {
		path, negate := strings.CutPrefix(c, "!")
		_, err := os.Stat(m.host(path))
		if exists := err == nil; exists == negate {
			m.c.logf("%s: %s skipped: ConditionPathExists=%s is false", m.Name, u.Name, c)
			r.ok = true
			return
		}
	}
	for {
		ok := m.startUnit(ctx, r)
		if ctx.Err() != nil || u.Type == "oneshot" {
			return
		}
		if u.Restart != "always" && !(u.Restart == "on-failure" && !ok) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(u.RestartSec):
		}
	}
}

// startUnit runs the unit's ExecStartPre lines, then ExecStart until it exits (or ctx ends). It
// reports whether the main process ran and exited cleanly.
func (m *Machine) startUnit(ctx context.Context, r *unitRun) bool {
	u := r.u
	for i, pre := range u.ExecStartPre {
		if !u.Privileged[i] {
			pre = asUser(u, pre)
		}
		if code, reason := m.runProcess(ctx, u, pre); code != 0 {
			m.c.logf("%s: %s: ExecStartPre %s failed: %s", m.Name, u.Name, strings.Join(pre, " "), reason)
			return false
		}
	}
	argv := asUser(u, u.ExecStart)
	if u.Type == "oneshot" {
		code, reason := m.runProcess(ctx, u, argv)
		r.ok = code == 0
		if !r.ok {
			m.c.logf("%s: %s failed: %s", m.Name, u.Name, reason)
		} else {
			m.c.logf("%s: %s finished", m.Name, u.Name)
		}
		return r.ok
	}
	spec, err := m.command(u.Name, argv, u.Env, u.Name)
	if err != nil {
		m.c.logf("%s: %s: %v", m.Name, u.Name, err)
		return false
	}
	p, err := proc.Start(spec)
	if err != nil {
		m.c.logf("%s: %s: %v", m.Name, u.Name, err)
		return false
	}
	m.c.logf("%s: started %s (pid %d)", m.Name, u.Name, p.Pid())
	if err := afterStart(ctx, m, u); err != nil {
		m.c.logf("%s: %s: %v", m.Name, u.Name, err)
		p.Kill()
		return false
	}
	select {
	case <-r.started:
	default:
		r.ok = true
		close(r.started)
	}
	select {
	case <-p.Done():
		m.c.logf("%s: %s exited: %s", m.Name, u.Name, p.ExitReason())
		return p.ExitCode() == 0
	case <-ctx.Done():
		p.Kill()
		return false
	}
}

// asUser runs argv as the unit's User and Group, as systemd does: setpriv looks the names up in the
// machine's own /etc/passwd and /etc/group, which Ignition wrote.
func asUser(u *unit, argv []string) []string {
	if u.User == "" {
		return argv
	}
	group := u.Group
	if group == "" {
		group = u.User
	}
	return append([]string{"/usr/bin/setpriv", "--reuid=" + u.User, "--regid=" + group, "--init-groups", "--"}, argv...)
}

// runProcess runs argv for unit u to completion and returns its exit code and how it ended.
func (m *Machine) runProcess(ctx context.Context, u *unit, argv []string) (int, string) {
	spec, err := m.command(u.Name, argv, u.Env, u.Name)
	if err != nil {
		return -1, err.Error()
	}
	p, err := proc.Start(spec)
	if err != nil {
		return -1, err.Error()
	}
	select {
	case <-p.Done():
		return p.ExitCode(), p.ExitReason()
	case <-ctx.Done():
		p.Kill()
		return -1, "stopped"
	}
}

// runOutput runs a host command with env and returns its combined output.
func runOutput(ctx context.Context, path string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
