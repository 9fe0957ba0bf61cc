package matchbox

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Defaults of the platform block.
const (
	DefaultInstallDisk = "/dev/sda"
	DefaultChannel     = "stable"
)

// channels are each OS's release channels (Flatcar) or streams (Fedora CoreOS).
var channels = map[string][]string{
	spec.OSFlatcar: {"stable", "beta", "alpha", "lts"},
	spec.OSFCOS:    {"stable", "testing", "next"},
}

var (
	flatcarVersionRE = regexp.MustCompile(`^(current|\d+\.\d+\.\d+)$`)
	fcosVersionRE    = regexp.MustCompile(`^(\d+)\.\d{8}\.\d+\.\d+$`)
	diskRE           = regexp.MustCompile(`^/dev/[A-Za-z0-9._:+/-]+$`)
)

// Settings are the platform block, `platform "matchbox" {}`: bare metal booted over the network by
// matchbox.
type Settings struct {
	HTTPEndpoint string   `hcl:"matchbox_http_endpoint"`
	OSChannel    string   `hcl:"os_channel,optional"`
	OSVersion    string   `hcl:"os_version"`
	CachedAssets bool     `hcl:"cached_assets,optional"`
	InstallDisk  string   `hcl:"install_disk,optional"`
	KernelArgs   []string `hcl:"kernel_args,optional"`
}

// Docs describes each setting, in Markdown.
func (Settings) Docs() map[string]string {
	return map[string]string{
		"matchbox_http_endpoint": "Where machines reach matchbox, like `http://matchbox.example.com:8080`.",
		"os_channel":             "The release channel: `stable` (default), `beta`, `alpha` or `lts` for Flatcar; `stable`, `testing` or `next` for Fedora CoreOS.",
		"os_version":             "The release to PXE-boot and install, like `4230.2.3` (Flatcar; `current` follows the channel) or `42.20250901.3.0` (Fedora CoreOS).",
		"cached_assets":          "Serve kernels, initramfs and install images from matchbox's `/assets/` instead of the OS's release servers.",
		"install_disk":           "The disk the OS is installed to (default `/dev/sda`); a machine's `install_disk` overrides it.",
		"kernel_args":            "Added to the PXE kernel command line, like `console=ttyS0,115200n8`.",
	}
}

// settings are the platform block with defaults applied.
type settings struct {
	endpoint   string // no trailing slash
	channel    string
	version    string
	cached     bool
	disk       string
	kernelArgs []string
}

func settingsOf(c *spec.Cluster) settings {
	p := c.Platform.Settings.(*Settings)
	s := settings{
		endpoint:   strings.TrimSuffix(p.HTTPEndpoint, "/"),
		channel:    p.OSChannel,
		version:    p.OSVersion,
		cached:     p.CachedAssets,
		disk:       p.InstallDisk,
		kernelArgs: p.KernelArgs,
	}
	if s.channel == "" {
		s.channel = DefaultChannel
	}
	if s.disk == "" {
		s.disk = DefaultInstallDisk
	}
	return s
}

// installDisk is the disk a machine installs to: its own install_disk, else the platform's.
func (s settings) installDisk(n spec.Node) string {
	if n.InstallDisk != "" {
		return n.InstallDisk
	}
	return s.disk
}

// argsSetByLiftoff are kernel arguments the profiles set themselves.
var argsSetByLiftoff = []string{"initrd=", "flatcar.config.url=", "flatcar.first_boot=", "coreos.inst.", "coreos.live.rootfs_url=", "ignition.config.url="}

func field(setting string) spec.Path { return spec.PlatformField(spec.PlatformMatchbox, setting) }

// Validate checks the matchbox settings and that every machine can be told apart by its MAC.
func (Adapter) Validate(c *spec.Cluster) spec.Problems {
	var ps spec.Problems
	add := func(field spec.Path, summary, detail string, args ...any) {
		ps = append(ps, spec.Problem{Path: field, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	s := settingsOf(c)
	p := c.Platform.Settings.(*Settings)
	if m := c.MachineSecrets; m == nil || (m.Server == "" && !m.InIgnition) {
		add(spec.At("machine_secrets"), "Machine secrets served in the clear",
			"matchbox serves each machine's Ignition config over plain HTTP to anyone who knows its MAC address: set "+
				"machine_secrets.server to the HOST:PORT where `liftoff bootstrap` serves each machine its keys over HTTPS, "+
				"or machine_secrets.in_ignition = true to keep them in the configs (see docs/security.md)")
	}

	if c.RoleConfigURL != "" {
		add(spec.At("cluster", "role_config_url"), "Role configs served by matchbox",
			"matchbox serves the roles' configs itself, at %s/ignition?cluster=%s&role=ROLE: remove role_config_url", strings.TrimSuffix(p.HTTPEndpoint, "/"), c.Name)
	}

	if u, err := url.Parse(p.HTTPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		add(field("matchbox_http_endpoint"), "Invalid matchbox endpoint",
			"%q must be the URL machines reach matchbox's HTTP API at, like http://matchbox.example.com:8080, with nothing after the port", p.HTTPEndpoint)
	} else if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			add(field("matchbox_http_endpoint"), "Invalid matchbox endpoint", "port %s is out of range", port)
		}
	}

	if known, ok := channels[c.OS]; ok && !contains(known, s.channel) {
		add(field("os_channel"), "Unknown OS channel", "%q is not a %s channel: use one of %s", s.channel, c.OS, strings.Join(known, ", "))
	}
	switch {
	case s.version == "":
		add(field("os_version"), "Missing OS version", "set the %s release to PXE-boot and install, like %s", c.OS, exampleVersion(c.OS))
	case c.OS == spec.OSFlatcar && !flatcarVersionRE.MatchString(s.version):
		add(field("os_version"), "Invalid Flatcar version", "%q is not a Flatcar release like 4230.2.3 (or \"current\")", s.version)
	case c.OS == spec.OSFCOS && !fcosVersionRE.MatchString(s.version):
		add(field("os_version"), "Invalid Fedora CoreOS version", "%q is not a Fedora CoreOS release like 42.20250901.3.0", s.version)
	}

	if !diskRE.MatchString(s.disk) {
		add(field("install_disk"), "Invalid install disk", "%q must be a device path like /dev/sda or /dev/disk/by-id/...", s.disk)
	}
	for i, a := range s.kernelArgs {
		f := field("kernel_args").Index(i)
		switch {
		case a == "" || strings.ContainsAny(a, " \t\n\"'"):
			add(f, "Invalid kernel argument", "%q must be one argument without spaces or quotes", a)
		case setByLiftoff(a):
			add(f, "Kernel argument set by liftoff", "%q: liftoff sets this argument in the PXE profiles itself", a)
		}
	}

	for _, n := range c.Machines() {
		prefix := spec.MachinePath(n)
		if n.MAC == "" {
			add(prefix.Attr("mac"), "Missing MAC address",
				"matchbox tells machines apart by the MAC address of their boot interface; set mac on %s %s, like mac = \"52:54:00:a1:9c:ae\"", n.Role, n.Name)
		}
		if n.InstallDisk != "" && !diskRE.MatchString(n.InstallDisk) {
			add(prefix.Attr("install_disk"), "Invalid install disk", "%q must be a device path like /dev/sda or /dev/disk/by-id/...", n.InstallDisk)
		}
	}
	return ps
}

func exampleVersion(os string) string {
	if os == spec.OSFCOS {
		return "42.20250901.3.0"
	}
	return "4230.2.3"
}

func setByLiftoff(arg string) bool {
	for _, p := range argsSetByLiftoff {
		if strings.HasPrefix(arg, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
