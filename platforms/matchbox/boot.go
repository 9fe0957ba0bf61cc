package matchbox

import (
	"fmt"
	"strconv"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

// iPXE expands ${mac:hexhyp} to the booting interface's MAC address as 52-54-00-a1-9c-ae before it
// boots the kernel; matchbox reads either spelling of a MAC.
const ipxeMAC = "${mac:hexhyp}"

// netBoot is a profile's boot section: what iPXE loads and the kernel command line.
type netBoot struct {
	Kernel string   `json:"kernel"`
	Initrd []string `json:"initrd"`
	Args   []string `json:"args"`
}

// installedQuery is the label that selects a machine's final config rather than its install stage.
const installedQuery = "os=installed"

// finalConfigURL is where an installer fetches the machine's final Ignition config; mac is a MAC
// address or an iPXE variable that expands to one.
func (s settings) finalConfigURL(mac string) string {
	return s.endpoint + "/ignition?mac=" + mac + "&" + installedQuery
}

// flatcarBoard is Flatcar's name for an architecture.
func flatcarBoard(arch string) string {
	if arch == "arm64" {
		return "arm64-usr"
	}
	return "amd64-usr"
}

// flatcarBaseURL is where a Flatcar release's images are, without the version: the directory
// flatcar-install's -b option takes.
func (s settings) flatcarBaseURL(arch string) string {
	if s.cached {
		return s.endpoint + "/assets/flatcar/" + flatcarBoard(arch)
	}
	return fmt.Sprintf("https://%s.release.flatcar-linux.net/%s", s.channel, flatcarBoard(arch))
}

// flatcarBoot PXE-boots Flatcar into RAM; Ignition there fetches the install config from matchbox
// with the machine's MAC, and the install script reads where the final config is from the kernel
// command line.
func (s settings) flatcarBoot(arch string) netBoot {
	base := s.flatcarBaseURL(arch) + "/" + s.version
	const initrd = "flatcar_production_pxe_image.cpio.gz"
	return netBoot{
		Kernel: base + "/flatcar_production_pxe.vmlinuz",
		Initrd: []string{base + "/" + initrd},
		Args: append([]string{
			"initrd=" + initrd,
			"flatcar.config.url=" + s.endpoint + "/ignition?mac=" + ipxeMAC,
			"flatcar.first_boot=yes",
			configURLArg + s.finalConfigURL(ipxeMAC),
		}, s.kernelArgs...),
	}
}

// fcosArch is Fedora CoreOS's name for an architecture.
func fcosArch(arch string) string {
	if arch == "arm64" {
		return "aarch64"
	}
	return "x86_64"
}

// fcosBoot PXE-boots the Fedora CoreOS live image, whose coreos-installer writes the OS to disk with
// the machine's final config (fetched from matchbox with its MAC) and reboots.
func (s settings) fcosBoot(arch, disk string) netBoot {
	a := fcosArch(arch)
	base := fmt.Sprintf("https://builds.coreos.fedoraproject.org/prod/streams/%s/builds/%s/%s", s.channel, s.version, a)
	if s.cached {
		base = s.endpoint + "/assets/fedora-coreos"
	}
	prefix := base + "/fedora-coreos-" + s.version + "-live-"
	// Releases from Fedora 42 on name the kernel kernel.ARCH; earlier ones kernel-ARCH.
	kernel := prefix + "kernel-" + a
	if major, _ := strconv.Atoi(strings.SplitN(s.version, ".", 2)[0]); major >= 42 {
		kernel = prefix + "kernel." + a
	}
	return netBoot{
		Kernel: kernel,
		Initrd: []string{"--name main " + prefix + "initramfs." + a + ".img"},
		Args: append([]string{
			"initrd=main",
			"coreos.live.rootfs_url=" + prefix + "rootfs." + a + ".img",
			"coreos.inst.install_dev=" + disk,
			"coreos.inst.ignition_url=" + s.finalConfigURL(ipxeMAC),
		}, s.kernelArgs...),
	}
}

// configURLArg is the kernel argument of the install stage's profile that tells its script where
// the machine's final config is: iPXE expands the MAC in it, so machines that install to the same
// disk share one install profile and config.
const configURLArg = "liftoff.config_url="

// flatcarInstall is the Ignition config of Flatcar's install stage for the machines that install
// to disk: fetch the final config from matchbox at the URL the kernel command line names (with the
// machine's MAC), install to disk with it, reboot into the installed system.
func (s settings) flatcarInstall(c *spec.Cluster, disk string) ([]byte, error) {
	args := []string{"-d", disk, "-C", s.channel, "-V", s.version}
	if s.cached {
		args = append(args, "-b", s.flatcarBaseURL(c.Arch))
	}
	script, err := butane.File(installScript, 0o755, fmt.Appendf(nil, `#!/bin/bash
set -euo pipefail
url=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^%[1]s//p')
if [[ -z $url ]]; then
  echo "liftoff-install: the kernel command line has no %[1]s" >&2
  exit 1
fi
curl --fail --silent --show-error --location --retry 10 --retry-delay 5 --retry-all-errors \
  --output /var/tmp/liftoff.ign "$url"
flatcar-install %[2]s -i /var/tmp/liftoff.ign
udevadm settle
systemctl reboot
`, configURLArg, strings.Join(args, " ")))
	if err != nil {
		return nil, err
	}
	unit := fmt.Sprintf(`[Unit]
Description=Install Flatcar to %s with the machine's final config (liftoff)
Wants=network-online.target
After=network-online.target
[Service]
Type=oneshot
ExecStart=%s
[Install]
WantedBy=multi-user.target
`, disk, installScript)
	enabled := true
	cfg := igntypes.Config{
		Ignition: igntypes.Ignition{Version: versions.IgnitionSpec},
		Storage:  igntypes.Storage{Files: []igntypes.File{script}},
		Systemd:  igntypes.Systemd{Units: []igntypes.Unit{{Name: "liftoff-install.service", Enabled: &enabled, Contents: &unit}}},
	}
	if len(c.SSHAuthorizedKeys) > 0 {
		core := igntypes.PasswdUser{Name: "core"}
		for _, k := range c.SSHAuthorizedKeys {
			core.SSHAuthorizedKeys = append(core.SSHAuthorizedKeys, igntypes.SSHAuthorizedKey(k))
		}
		cfg.Passwd.Users = []igntypes.PasswdUser{core}
	}
	return butane.Marshal(cfg)
}

// installScript is the install stage's script on the PXE-booted machine.
const installScript = "/opt/liftoff/install"
