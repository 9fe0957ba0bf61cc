package harness

// This file is the one place that says how a local cluster differs from real machines. Everything
// else runs what liftoff rendered as it is: the units' command lines, the kubelet's configuration
// file, the static pods and manifests. The README lists the same differences.
//
// What the OS image would provide (Flatcar and Fedora CoreOS ship these; the harness writes them):
//   - containerd.service and /etc/containerd/config.toml, with the rendered pause image as the
//     sandbox image;
//   - /etc files the host's programs need inside the machine's /etc (alternatives, nsswitch.conf,
//     os-release), /etc/hosts, /etc/resolv.conf and /etc/machine-id;
//   - the kernel settings of /etc/sysctl.d (systemd-sysctl) and modules of /etc/modules-load.d;
//   - /lib/modules, which kube-proxy mounts: a host whose kernel has its modules built in may lack
//     it, and then it is created, empty.
//
// What one host needs that a real machine does not:
//   - Downloads come from a release host on the cluster's gateway (the spec's kubelet, etcd and
//     cni_plugins blocks point there, pinned by sha512, as a user with a mirror would write them),
//     and images are imported into each machine's containerd instead of pulled.
//   - The kubelet gets a configuration drop-in of its own, last in the rendered drop-in directory
//     (--config-dir): cgroupfs under a cgroup root of
//     the machine's own (no systemd runs the machine), cgroup v1 allowed (this kernel), swap
//     allowed, oomScoreAdj 0 (no CAP_SYS_RESOURCE), eviction thresholds in bytes rather than
//     shares of the host's disk that all machines share, and no image garbage collection
//     (imported images cannot be pulled again); containerd likewise restricts OOM score
//     adjustments and runs without AppArmor or systemd cgroups.
//   - Kernel settings outside the network namespace are host-wide: they are applied once per
//     cluster and the host's values are restored when it closes.
//   - kube-proxy sets the connection-tracking table size, which a network namespace may only
//     read: the host gets the value kube-proxy asks for (its default for this many CPUs), so that
//     it finds nothing to change.
//   - The kernel's boot ID is host-wide: each boot of a machine gets one of its own, mounted over
//     /proc/sys/kernel/random/boot_id in its namespace, so that its Node reports the reboot.
//   - resolv.conf names the gateway, where the harness answers every DNS query with NXDOMAIN: no
//     query leaves the host.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/harness/images"
	"github.com/liftoff-k8s/liftoff/spec"
)

// containerdSocket is the machine's containerd socket, inside its namespaces.
const containerdSocket = "/run/containerd/containerd.sock"

// bootScript is the part of a machine's boot (shell, in its new mount namespace) that gives it a
// boot ID of its own.
const bootScript = "cat /proc/sys/kernel/random/uuid > /run/liftoff-boot-id; " +
	"mount --bind /run/liftoff-boot-id /proc/sys/kernel/random/boot_id; "

// osUnits are the units the OS image ships that the rendered configs rely on.
var osUnits = map[string]string{
	"containerd.service": `[Unit]
Description=containerd container runtime (OS image)
After=network.target

[Service]
ExecStartPre=/bin/mkdir -p /run/containerd
ExecStart=/usr/bin/containerd --config /etc/containerd/config.toml
Restart=always
RestartSec=1
`,
}

// containerdConfig is the OS's containerd configuration with the local cluster's restrictions.
func containerdConfig(pause string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # Local cluster: no CAP_SYS_RESOURCE to lower OOM scores, no AppArmor.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # Local cluster: no systemd manages the machine's cgroups.
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`, containerdSocket, pause)
}

// localKubeletDropIn is the local cluster's kubelet configuration drop-in: in the directory the
// rendered kubelet unit reads drop-ins from, after liftoff's own.
var localKubeletDropIn = path.Join(generator.HostKubeletConfigDir, "90-local.conf")

// kubeletDropIn is the local cluster's kubelet configuration drop-in for a machine.
func kubeletDropIn(cgroupRoot string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Local cluster: no systemd; each machine's pods under a cgroup of its own.
cgroupDriver: cgroupfs
cgroupRoot: %s
# Local cluster: this kernel mounts cgroup v1, and swap may be on.
failCgroupV1: false
failSwapOn: false
# Local cluster: no CAP_SYS_RESOURCE to lower the kubelet's own OOM score.
oomScoreAdj: 0
# Local cluster: every machine shares the host's disk, whose free share says nothing about one
# machine; and imported images cannot be pulled again, so they are never collected.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1Gi
  imagefs.available: 1Gi
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, cgroupRoot)
}

// afterStart runs once a unit's main process started: for containerd, it waits for the socket and
// imports the cluster's images (as pulled images would be there) before the kubelet may start.
func afterStart(ctx context.Context, m *Machine, u *unit) error {
	if u.Name != "containerd.service" {
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := runOutput(ctx, "ctr", nil, "--address", m.containerdAddress(), "version"); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer on %s within a minute: %w", containerdSocket, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return m.c.importImages(ctx, m)
}

// containerdAddress is the machine's containerd socket as the host reaches it, through the
// namespace holder's root.
func (m *Machine) containerdAddress() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holder == nil {
		return ""
	}
	return fmt.Sprintf("/proc/%d/root%s", m.holder.Pid(), containerdSocket)
}

// importImages imports the cluster's images into the machine's containerd, once per machine disk.
// They are not unpacked: containerd does that when a container first needs an image, so a machine
// pays only for what it runs, as with pulled images.
func (c *Cluster) importImages(ctx context.Context, m *Machine) error {
	stamp := m.host("/var/lib/liftoff-harness/images-" + c.imagesDigest())
	if _, err := os.Stat(stamp); err == nil {
		return nil
	}
	start := time.Now()
	if err := images.Import(ctx, "ctr", m.containerdAddress(), c.images, images.NoUnpack()); err != nil {
		return fmt.Errorf("importing images: %w", err)
	}
	m.c.logf("%s: imported %d images in %s", m.Name, len(c.images), time.Since(start).Round(time.Millisecond))
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return err
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// prepareOS writes what the OS image provides and the local cluster's adaptations into the
// machine's root, after Ignition.
func (c *Cluster) prepareOS(m *Machine) error {
	files := map[string]string{
		"/etc/hosts":                         c.hostsFile(),
		"/etc/resolv.conf":                   "nameserver " + c.net.gateway.String() + "\noptions timeout:1 attempts:1\n",
		"/etc/machine-id":                    machineID(c.marker, m.Name) + "\n",
		"/etc/nsswitch.conf":                 "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n",
		"/etc/ssl/certs/ca-certificates.crt": string(c.release.caPEM),
		"/etc/containerd/config.toml":        containerdConfig(pauseImage),
		localKubeletDropIn:                   kubeletDropIn(m.cgroup.path),
	}
	for p, text := range files {
		dst := m.host(p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
			return err
		}
	}
	// The host's programs (iptables, curl) find their alternatives and OS identity in /etc.
	for _, p := range []string{"/etc/alternatives", "/etc/os-release", "/etc/ssl/openssl.cnf"} {
		if err := copyTree(p, m.host(p)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) hostsFile() string {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n::1 localhost\n")
	for _, m := range c.machines {
		fmt.Fprintf(&b, "%s %s\n", m.IP, m.Name)
	}
	return b.String()
}

func machineID(marker, name string) string {
	id := fmt.Sprintf("%x", []byte(marker+name))
	for len(id) < 32 {
		id += "0"
	}
	return id[:32]
}

// copyTree copies a file, a symlink or a directory of them from the host.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			os.Remove(to)
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			return os.Symlink(target, to)
		case fi.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			return os.WriteFile(to, data, fi.Mode().Perm())
		}
	})
}

// hostPrerequisites checks and provides what the machines need of the host's OS image: the
// kernel modules of /etc/modules-load.d (loaded or built in) and a /lib/modules directory.
func (c *Cluster) hostPrerequisites() error {
	modules, err := os.ReadFile(c.machines[0].host("/etc/modules-load.d/liftoff-kubernetes.conf"))
	if err != nil {
		return err
	}
	// What shows that a module is there, where built-in code has no /sys/module entry.
	evidence := map[string]string{"br_netfilter": "/proc/sys/net/bridge"}
	for _, mod := range strings.Fields(string(modules)) {
		_, err := os.Stat("/sys/module/" + mod)
		if p, ok := evidence[mod]; ok && err != nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			if err := run(context.Background(), "modprobe", mod); err != nil {
				return fmt.Errorf("the machines need the kernel module %s, which this host neither has built in nor can load: %w", mod, err)
			}
		}
	}
	return os.MkdirAll("/lib/modules", 0o755)
}

// sysctls applies the machines' /etc/sysctl.d settings: net.* inside each machine's network
// namespace, the rest host-wide once, remembering the host's values for restoreSysctls.
func (c *Cluster) applySysctls(ctx context.Context) error {
	settings, err := readSysctls(c.machines[0].host("/etc/sysctl.d"))
	if err != nil {
		return err
	}
	var keys []string
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c.savedSysctls = map[string]string{}
	for _, k := range keys {
		if strings.HasPrefix(k, "net.") {
			continue
		}
		if err := c.setHostSetting("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), settings[k]); err != nil {
			return err
		}
	}
	// kube-proxy's default: 32768 entries per CPU, at least 131072.
	conntrack := max(32768*runtime.NumCPU(), 131072)
	if err := c.setHostSetting("/proc/sys/net/netfilter/nf_conntrack_max", strconv.Itoa(conntrack)); err != nil {
		return err
	}
	for _, m := range c.machines {
		args := []string{"--net=" + m.netns, "sysctl", "-q", "-w"}
		for _, k := range keys {
			if strings.HasPrefix(k, "net.") {
				args = append(args, k+"="+settings[k])
			}
		}
		if err := run(ctx, "nsenter", args...); err != nil {
			return fmt.Errorf("machine %s: %w", m.Name, err)
		}
	}
	return nil
}

// setHostSetting writes a host-wide kernel setting, remembering its value for restoreSysctls.
func (c *Cluster) setHostSetting(p, value string) error {
	old, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("kernel setting %s: %w", p, err)
	}
	if _, saved := c.savedSysctls[p]; !saved {
		c.savedSysctls[p] = strings.TrimSpace(string(old))
		// Kept beside the cluster's claim, so that a sweep restores them if this harness dies.
		if err := saveHostSettings(c.marker, c.savedSysctls); err != nil {
			return err
		}
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("kernel setting %s=%s: %w", p, value, err)
	}
	return nil
}

// restoreSysctls puts the host's kernel settings back.
func (c *Cluster) restoreSysctls() {
	restoreHostSettings(c.savedSysctls)
	c.savedSysctls = nil
	os.Remove(hostSettingsFile(c.marker))
}

func restoreHostSettings(saved map[string]string) {
	for p, v := range saved {
		os.WriteFile(p, []byte(v), 0o644)
	}
}

func hostSettingsFile(id string) string { return filepath.Join(ownersDir, id+".settings") }

func saveHostSettings(id string, saved map[string]string) error {
	data, err := json.Marshal(saved)
	if err != nil {
		return err
	}
	return os.WriteFile(hostSettingsFile(id), data, 0o600)
}

// readSysctls reads key = value lines from the .conf files of dir.
func readSysctls(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || l[0] == ';' {
				continue
			}
			k, v, ok := strings.Cut(l, "=")
			if ok {
				out[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out, nil
}

// localDownloads points the spec's kubelet, etcd and CNI plugin downloads at the release host on
// gateway, pinned by the artifacts' sha512.
func localDownloads(c *spec.Cluster, gateway netip.Addr, kubelet, etcd, cni artifact) {
	base := "https://" + netip.AddrPortFrom(gateway, releasePort).String()
	set := func(p **spec.Program, a artifact) {
		if *p == nil {
			*p = &spec.Program{}
		}
		(*p).URL, (*p).SHA512 = base+a.urlPath, a.sha512
	}
	set(&c.Kubelet, kubelet)
	set(&c.Etcd, etcd)
	set(&c.CNIPlugins, cni)
}

// gatewayOf is the gateway of the cluster's network: the first address of the /24 holding the
// API load balancer's address.
func gatewayOf(apiServer netip.Addr) (netip.Prefix, netip.Addr, error) {
	if !apiServer.Is4() || apiServer.IsLoopback() {
		return netip.Prefix{}, netip.Addr{}, fmt.Errorf("the cluster's api_server %s must be an IPv4 address outside loopback: the harness puts the machines on a bridge in its /24 (use a spec like harness/testdata/cluster.hcl)", apiServer)
	}
	prefix, _ := apiServer.Prefix(24)
	return prefix, prefix.Addr().Next(), nil
}
