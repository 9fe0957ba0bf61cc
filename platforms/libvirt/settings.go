package libvirt

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Settings are the platform block, `platform "libvirt" {}`.
type Settings struct {
	Image            string `hcl:"image"`
	PoolDir          string `hcl:"pool_dir,optional"`
	Network          string `hcl:"network,optional"`
	DiskSize         int    `hcl:"disk_size,optional"`
	ControllerCPUs   int    `hcl:"controller_cpus,optional"`
	ControllerMemory int    `hcl:"controller_memory,optional"`
	WorkerCPUs       int    `hcl:"worker_cpus,optional"`
	WorkerMemory     int    `hcl:"worker_memory,optional"`
}

// Docs describes each setting, in Markdown.
func (Settings) Docs() map[string]string {
	return map[string]string{
		"image":             "The OS's QEMU disk image on the libvirt host, like `/var/lib/libvirt/images/flatcar_production_qemu_image.img`: every machine's disk is a copy-on-write overlay of it (qcow2).",
		"pool_dir":          "Where the machines' disks and Ignition configs go on the libvirt host (default `" + DefaultPoolDir + "`).",
		"network":           "The name of the libvirt network the render defines (default: the cluster's name).",
		"disk_size":         "Each machine's disk size in GiB (default 20).",
		"controller_cpus":   "CPUs per controller (default 2).",
		"controller_memory": "Memory per controller in MiB (default 4096).",
		"worker_cpus":       "CPUs per worker (default 2).",
		"worker_memory":     "Memory per worker in MiB (default 2048).",
	}
}

// Defaults of the platform block.
const (
	DefaultPoolDir  = "/var/lib/libvirt/images"
	DefaultDiskSize = 20
)

// settings are the platform block with defaults applied and the network worked out.
type settings struct {
	image, poolDir, network string
	diskSize                int
	cpus, memory            map[string]int // by role
	prefix                  netip.Prefix
	gateway                 netip.Addr
}

func settingsOf(c *spec.Cluster) (settings, error) {
	p := c.Platform.Settings.(*Settings)
	s := settings{image: p.Image, poolDir: p.PoolDir, network: p.Network, diskSize: p.DiskSize,
		cpus:   map[string]int{spec.RoleController: or(p.ControllerCPUs, 2), spec.RoleWorker: or(p.WorkerCPUs, 2)},
		memory: map[string]int{spec.RoleController: or(p.ControllerMemory, 4096), spec.RoleWorker: or(p.WorkerMemory, 2048)}}
	s.cpus[spec.RoleBootstrap], s.memory[spec.RoleBootstrap] = s.cpus[spec.RoleController], s.memory[spec.RoleController]
	if s.poolDir == "" {
		s.poolDir = DefaultPoolDir
	}
	if s.network == "" {
		s.network = c.Name
	}
	if s.diskSize == 0 {
		s.diskSize = DefaultDiskSize
	}
	if len(c.HostCIDRs) == 0 {
		return s, fmt.Errorf("the libvirt platform needs host_cidrs")
	}
	var err error
	if s.prefix, err = netip.ParsePrefix(c.HostCIDRs[0]); err != nil {
		return s, err
	}
	s.gateway = gatewayOf(s.prefix)
	return s, nil
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func field(setting string) spec.Path { return spec.PlatformField("libvirt", setting) }

// Validate checks the settings and that every machine has an address of the network's own.
func (Adapter) Validate(c *spec.Cluster) spec.Problems {
	var ps spec.Problems
	add := func(f spec.Path, summary, detail string, args ...any) {
		ps = append(ps, spec.Problem{Path: f, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	p := c.Platform.Settings.(*Settings)
	if p.Image == "" || !path.IsAbs(p.Image) || path.Clean(p.Image) != p.Image {
		add(field("image"), "Invalid image", "%q must be the absolute path of the OS's QEMU image on the libvirt host, like /var/lib/libvirt/images/flatcar_production_qemu_image.img", p.Image)
	}
	if p.PoolDir != "" && (!path.IsAbs(p.PoolDir) || path.Clean(p.PoolDir) != p.PoolDir) {
		add(field("pool_dir"), "Invalid pool directory", "%q must be an absolute, clean path on the libvirt host", p.PoolDir)
	}
	if p.Network != "" && !nameRE.MatchString(p.Network) {
		add(field("network"), "Invalid network name", "%q must be letters, digits, '_', '.' or '-', at most 64", p.Network)
	}
	for _, f := range []struct {
		name     string
		v, least int
	}{{"disk_size", p.DiskSize, 8}, {"controller_cpus", p.ControllerCPUs, 1}, {"controller_memory", p.ControllerMemory, 2048},
		{"worker_cpus", p.WorkerCPUs, 1}, {"worker_memory", p.WorkerMemory, 1024}} {
		if f.v != 0 && f.v < f.least {
			add(field(f.name), "Too small", "%s is %d; at least %d", f.name, f.v, f.least)
		}
	}
	if c.Arch != "" && c.Arch != "amd64" && c.Arch != "arm64" {
		add(spec.At("cluster", "arch"), "Unsupported architecture", "libvirt machines are amd64 or arm64, not %q", c.Arch)
	}
	if len(c.HostCIDRs) == 0 {
		add(spec.At("cluster", "host_cidrs"), "Missing host CIDRs", "the libvirt platform defines a network for the machines: set host_cidrs, whose first range is that network's (its first address is the host's)")
		return ps
	}
	prefix, err := netip.ParsePrefix(c.HostCIDRs[0])
	if err != nil || !prefix.Addr().Is4() {
		add(spec.At("cluster", "host_cidrs").Index(0), "Invalid network", "%q is not an IPv4 CIDR the libvirt network can have", c.HostCIDRs[0])
		return ps
	}
	gateway := gatewayOf(prefix)
	for _, n := range c.Machines() {
		ip, err := netip.ParseAddr(n.IP)
		switch {
		case err != nil:
		case !prefix.Contains(ip) || ip == prefix.Masked().Addr():
			add(spec.MachinePath(n).Attr("ip"), "Address outside the network", "%s is not a host address of %s, the libvirt network's (host_cidrs[0])", n.IP, prefix.Masked())
		case ip == gateway:
			add(spec.MachinePath(n).Attr("ip"), "Address of the host", "%s is the libvirt network's own address (the first of %s): give the machine another", n.IP, prefix.Masked())
		}
	}
	return ps
}
