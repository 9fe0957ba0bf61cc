package generator

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/spec"
	"github.com/liftoff-k8s/liftoff/templates"
)

// etcdSnapshot is what a controller gets to snapshot its etcd member on a schedule: a timer, the
// service it starts, and the script that service runs.
type etcdSnapshot struct {
	Timer, Service     string
	Script, ScriptText string
}

// etcdSnapshotUnits renders a controller's liftoff-etcd-snapshot timer and service, or nil when the
// spec turns snapshots off. Every controller gets the same units: the script reads the member's
// name and address from the member's etcd configuration.
func etcdSnapshotUnits(c *spec.Cluster) (*etcdSnapshot, error) {
	s := c.EtcdSnapshots
	if !*s.Enabled {
		return nil, nil
	}
	interval, err := spec.ParseDuration(s.Interval)
	if err != nil {
		return nil, fmt.Errorf("etcd_snapshots.interval: %w", err)
	}
	script, err := templates.FS.ReadFile("butane/liftoff-etcd-snapshot.sh")
	if err != nil {
		return nil, err
	}
	timer, err := execute("etcd-snapshot.timer.tmpl", map[string]string{
		"Interval":       systemdSpan(interval),
		"FirstAfterBoot": systemdSpan(min(interval, 15*time.Minute)),
		"Spread":         systemdSpan(min(interval/10, 15*time.Minute)),
	})
	if err != nil {
		return nil, err
	}
	service, err := execute("etcd-snapshot.service.tmpl", map[string]any{
		"Cluster": c.Name, "Keep": *s.Keep, "Interval": systemdSpan(interval),
		"Script": HostEtcdSnapshotScript, "Dir": HostEtcdSnapshotDir, "Config": HostEtcdConfig,
		"CA": path.Join(HostPKIDir, EtcdCACert), "Cert": path.Join(HostPKIDir, APIServerEtcdCert), "Key": path.Join(HostPKIDir, APIServerEtcdKey),
		"Etcdctl": etcdTool(c, "etcdctl", HostEtcdSnapshotDir), "Etcdutl": etcdTool(c, "etcdutl", HostEtcdSnapshotDir),
	})
	if err != nil {
		return nil, err
	}
	return &etcdSnapshot{Timer: timer, Service: service, Script: HostEtcdSnapshotScript, ScriptText: string(script)}, nil
}

// etcdTool is the command line that runs a program of the etcd release a controller runs (etcdctl,
// etcdutl), from wherever the spec's etcd delivery put it, able to write in dirs.
func etcdTool(c *spec.Cluster, tool string, dirs ...string) string {
	switch c.Etcd.Delivery {
	case spec.DeliveryContainer:
		// The image etcd runs from, in a container of its own on the host's network, seeing the
		// client certificates and dirs under their host paths. label=disable lets it use them where
		// SELinux labels them for the host (Fedora CoreOS).
		args := []string{
			containerEngine(c.OS), "run", "--rm", "--network=host", "--security-opt", "label=disable",
			"--volume", HostPKIDir + ":" + HostPKIDir + ":ro",
		}
		for _, d := range dirs {
			args = append(args, "--volume", d+":"+d)
		}
		return strings.Join(append(args, c.Etcd.Image, tool), " ")
	case spec.DeliverySysext:
		return "/usr/bin/" + tool
	default:
		// liftoff-fetch links every program of the release into HostBinDir.
		return path.Join(HostBinDir, tool)
	}
}

// systemdSpan writes d as a systemd time span, to the second: 90m is "1h 30min".
func systemdSpan(d time.Duration) string {
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "min"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			parts = append(parts, fmt.Sprintf("%d%s", n, u.unit))
			d -= n * u.d
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " ")
}
