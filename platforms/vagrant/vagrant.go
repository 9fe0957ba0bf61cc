// Package vagrant renders a cluster as local virtual machines: one Vagrantfile for the whole
// cluster, and each machine's Ignition config with the static address of its private network.
//
// Each machine gets its Ignition config the way its box reads one: with libvirt, as the QEMU fw_cfg
// entry the OS looks for (opt/org.flatcar-linux/config, opt/com.coreos/config); with VirtualBox,
// through the vagrant-ignition plugin's config drive (Flatcar) or the /Ignition/Config guest
// property (Fedora CoreOS). Vagrant does not configure the guests' networks: the machine's own config
// gives the private interface, found by its MAC, the spec's address.
package vagrant

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/platforms"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Asset kinds of the Vagrant platform.
const (
	KindVagrantfile generator.Kind = "vagrantfile"
	// KindIgnition is a machine's Ignition config with its private network.
	KindIgnition generator.Kind = "vagrant-ignition"
)

// Paths in the output directory.
const (
	Dir             = "vagrant"
	VagrantfilePath = "vagrant/Vagrantfile"
)

// Adapter is the Vagrant platform.
type Adapter struct{}

func init() { platforms.Register(Adapter{}) }

// The platform adds to the machines' own configs.
var _ platforms.MachineConfigurer = Adapter{}

// Summary says what the platform is.
func (Adapter) Summary() string {
	return "Local virtual machines described by a Vagrantfile."
}

// NewSettings returns empty Settings.
func (Adapter) NewSettings() any { return &Settings{} }

// Kind is "vagrant".
func (Adapter) Kind() string { return spec.PlatformVagrant }

// machine is one machine of the Vagrantfile.
type machine struct {
	name, role, ip, mac string
	prefix              int
	cpus, memory        int
}

// MachineConfigs gives each machine its private network: the interface with the machine's MAC
// gets its address.
func (Adapter) MachineConfigs(c *spec.Cluster) (func(n spec.Node) (*igntypes.Config, error), error) {
	macs := platforms.MACs(c)
	return func(n spec.Node) (*igntypes.Config, error) {
		path, mode, text := networkFile(c.OS, macs[n.Name], n.IP, prefixOf(c, n.IP))
		f, err := butane.File(path, mode, []byte(text))
		if err != nil {
			return nil, fmt.Errorf("private network of %s: %w", n.Name, err)
		}
		return &igntypes.Config{Storage: igntypes.Storage{Files: []igntypes.File{f}}}, nil
	}, nil
}

// Render writes the Vagrantfile and each machine's Ignition config, which holds its private
// network (MachineConfigs), byte for byte as the generator rendered it.
func (Adapter) Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	configs, err := platforms.MachineIgnition(c, a)
	if err != nil {
		return nil, err
	}
	s := settingsOf(c)
	macs := platforms.MACs(c)
	nodes := c.Machines()
	machines := make([]machine, len(nodes))
	out := make([]generator.Asset, len(nodes), len(nodes)+1)
	for i, n := range nodes {
		machines[i] = machine{name: n.Name, role: n.Role, ip: n.IP, mac: macs[n.Name], prefix: prefixOf(c, n.IP), cpus: s.cpus[n.Role], memory: s.memory[n.Role]}
		out[i] = generator.Asset{Path: path.Join(Dir, "ignition", n.Name+".ign"), Kind: KindIgnition, Node: n.Name, Role: n.Role, Mode: 0o600, Data: configs[n.Name].Data}
	}
	return append(out, generator.Asset{Path: VagrantfilePath, Kind: KindVagrantfile, Mode: 0o644, Data: []byte(vagrantfile(c, s, machines))}), nil
}

// prefixOf is the prefix length of the host CIDR that holds ip, or 24.
func prefixOf(c *spec.Cluster, ip string) int {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return 24
	}
	for _, h := range c.HostCIDRs {
		if p, err := netip.ParsePrefix(h); err == nil && p.Contains(addr) {
			return p.Bits()
		}
	}
	return 24
}

// networkFile gives the interface with the MAC mac its address: a systemd-networkd unit on
// Flatcar, a NetworkManager connection on Fedora CoreOS. It returns the file's path, mode and text.
func networkFile(os, mac, ip string, prefix int) (string, int, string) {
	if os == spec.OSFCOS {
		return "/etc/NetworkManager/system-connections/liftoff-private.nmconnection", 0o600, fmt.Sprintf(`[connection]
id=liftoff-private
type=ethernet
[ethernet]
mac-address=%s
[ipv4]
method=manual
address1=%s/%d
[ipv6]
method=disabled
`, strings.ToUpper(mac), ip, prefix)
	}
	return "/etc/systemd/network/10-liftoff-private.network", 0o644, fmt.Sprintf(`[Match]
MACAddress=%s
[Network]
Address=%s/%d
`, mac, ip, prefix)
}

// fwCfgName is the QEMU fw_cfg entry each OS reads its Ignition config from.
func fwCfgName(os string) string {
	if os == spec.OSFCOS {
		return "opt/com.coreos/config"
	}
	return "opt/org.flatcar-linux/config"
}

// ruby quotes s as a single-quoted Ruby string, in which nothing is interpolated.
func ruby(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func vagrantfile(c *spec.Cluster, s settings, machines []machine) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`# -*- mode: ruby -*-
# Cluster %s, rendered by liftoff: %d machines booting %s with their Ignition configs.
#
#   vagrant up --provider=libvirt    (or virtualbox)
#
# libvirt hands each config to QEMU as fw_cfg %s; QEMU must be able to read
# ignition/*.ign (use qemu:///session, or let the libvirt-qemu user read them).
# VirtualBox needs the vagrant-ignition plugin for Flatcar boxes.

IGNITION_DIR = File.expand_path('ignition', __dir__)

MACHINES = [
`, c.Name, len(machines), c.OS, fwCfgName(c.OS))
	for _, m := range machines {
		mask := net.IP(net.CIDRMask(m.prefix, 32)).String()
		w("  { name: %s, role: %s, ip: %s, netmask: %s, mac: %s, cpus: %d, memory: %d },\n", ruby(m.name), ruby(m.role), ruby(m.ip), ruby(mask), ruby(m.mac), m.cpus, m.memory)
	}
	w(`].freeze

Vagrant.configure('2') do |config|
  config.vm.box = %s
`, ruby(s.box))
	if s.boxURL != "" {
		w("  config.vm.box_url = %s\n", ruby(s.boxURL))
	}
	if s.boxVersion != "" {
		w("  config.vm.box_version = %s\n", ruby(s.boxVersion))
	}
	w(`  config.ssh.username = 'core'
  config.vm.synced_folder '.', '/vagrant', disabled: true

  MACHINES.each do |machine|
    config.vm.define machine[:name] do |m|
      ignition = File.join(IGNITION_DIR, "#{machine[:name]}.ign")
      # The machine's own config sets the address on the interface with this MAC; no DHCP.
      m.vm.network :private_network, ip: machine[:ip], netmask: machine[:netmask], mac: machine[:mac].delete(':'),
                                     auto_config: false, libvirt__dhcp_enabled: false

      m.vm.provider :libvirt do |lv|
        lv.cpus = machine[:cpus]
        lv.memory = machine[:memory]
        lv.qemuargs value: '-fw_cfg'
        lv.qemuargs value: "name=%s,file=#{ignition}"
      end

      m.vm.provider :virtualbox do |vb|
        vb.cpus = machine[:cpus]
        vb.memory = machine[:memory]
`, fwCfgName(c.OS))
	if c.OS == spec.OSFCOS {
		w(`        vb.customize ['guestproperty', 'set', :id, '/Ignition/Config', File.read(ignition)]
      end
`)
	} else {
		w(`      end
      if Vagrant.has_plugin?('vagrant-ignition')
        m.ignition.enabled = true
        m.ignition.path = ignition
        m.ignition.drive_name = "liftoff-#{machine[:name]}"
        m.vm.provider(:virtualbox) { |vb| m.ignition.config_obj = vb }
      end
`)
	}
	w(`    end
  end
end
`)
	return b.String()
}
