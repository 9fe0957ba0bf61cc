package harness

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/harness/proc"
)

// runDir is the harness's runtime directory inside a machine's root; like /run, it is emptied at
// every boot.
const runDir = "/run/liftoff-harness"

// runEtcd is etcd.service: the real etcd with the unit's command line. Its --config-file is read
// from the root and given to etcd with every host path in it mapped into the root. Like the unit
// (Restart=always), etcd is started again after RestartSec whenever it exits, until ctx ends.
func (m *Machine) runEtcd(ctx context.Context, u *unit) error {
	if len(u.ExecStart) == 0 || path.Base(u.ExecStart[0]) != "etcd" {
		return fmt.Errorf("%s: ExecStart runs %v, not etcd", u.Name, u.ExecStart)
	}
	program, err := m.c.program(ctx, "etcd")
	if err != nil {
		return err
	}
	var args []string
	for _, a := range u.ExecStart[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(value, "/") {
			args = append(args, a)
			continue
		}
		if name == "--config-file" {
			cfg, err := m.rootedEtcdConfig(value)
			if err != nil {
				return fmt.Errorf("%s: %w", u.Name, err)
			}
			args = append(args, name+"="+cfg)
			continue
		}
		args = append(args, name+"="+m.host(value))
	}
	spec := proc.Spec{
		Name:     m.Name + "/" + u.Name,
		Path:     program,
		Args:     args,
		Env:      []string{"PATH=/usr/bin:/bin", "HOME=/root"},
		Dir:      m.Root,
		Log:      m.host("/var/log/liftoff-harness/" + u.Name + ".log"),
		Marker:   m.c.marker,
		Hostname: m.Name,
	}
	m.supervise(ctx, u, spec)
	return nil
}

// rootedEtcdConfig writes a copy of the etcd configuration file at p (a path on the machine) with
// every absolute path in it mapped into the machine's root, and returns the copy's real path.
func (m *Machine) rootedEtcdConfig(p string) (string, error) {
	data, err := os.ReadFile(m.host(p))
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	cfg = m.rootPaths(cfg).(map[string]any)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	dst := m.host(path.Join(runDir, path.Base(p)))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, out, 0o600)
}

func (m *Machine) rootPaths(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = m.rootPaths(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = m.rootPaths(e)
		}
		return t
	case string:
		if strings.HasPrefix(t, "/") {
			return m.host(t)
		}
	}
	return v
}

// supervise runs a unit's process until ctx ends, restarting it after RestartSec when it exits,
// as systemd does for Restart=always.
func (m *Machine) supervise(ctx context.Context, u *unit, spec proc.Spec) {
	restart := u.RestartSec
	for {
		p, err := proc.Start(spec)
		if err != nil {
			m.c.logf("%s: %s: %v", m.Name, u.Name, err)
		} else {
			m.c.logf("%s: started %s (pid %d)", m.Name, u.Name, p.Pid())
			select {
			case <-p.Done():
				m.c.logf("%s: %s exited: %s", m.Name, u.Name, p.ExitReason())
			case <-ctx.Done():
				p.Kill()
				return
			}
		}
		if u.Restart != "always" && u.Restart != "on-failure" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(restart):
		}
	}
}
