// Package libvirt renders a cluster as libvirt/QEMU virtual machines on one host: a libvirt network
// that gives each machine its address (a DHCP reservation by MAC), a domain per machine whose disk
// is a copy-on-write overlay of the OS's QEMU image and whose Ignition config reaches the OS through
// QEMU's firmware configuration device (fw_cfg), and a script that creates it all with qemu-img and
// virsh.
package libvirt

import (
	"fmt"
	"net/netip"
	"path"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Asset kinds of the libvirt platform.
const (
	KindNetwork  generator.Kind = "libvirt-network"
	KindDomain   generator.Kind = "libvirt-domain"
	KindIgnition generator.Kind = "libvirt-ignition"
	KindScript   generator.Kind = "libvirt-script"
)

// Paths in the output directory.
const (
	Dir         = "libvirt"
	NetworkPath = "libvirt/network.xml"
	ScriptPath  = "libvirt/create.sh"
)

// Adapter is the libvirt platform.
type Adapter struct{}

func init() { platforms.Register(Adapter{}) }

// Kind is "libvirt".
func (Adapter) Kind() string { return "libvirt" }

// Summary says what the platform is.
func (Adapter) Summary() string {
	return "libvirt/QEMU virtual machines on one host: a network, a domain per machine booting an overlay of the OS's QEMU image, and `libvirt/create.sh`, which creates them with `qemu-img` and `virsh`. Needs `host_cidrs`: the first is the network's."
}

// NewSettings returns empty Settings.
func (Adapter) NewSettings() any { return &Settings{} }

// Render writes the network, each machine's domain and Ignition config, and the script.
func (Adapter) Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	configs, err := platforms.MachineIgnition(c, a)
	if err != nil {
		return nil, err
	}
	s, err := settingsOf(c)
	if err != nil {
		return nil, err
	}
	macs := platforms.MACs(c)
	net := libvirtxml.Network{
		Name:    s.network,
		Forward: &libvirtxml.NetworkForward{Mode: "nat"},
		IPs: []libvirtxml.NetworkIP{{
			Address: s.gateway.String(), Prefix: uint(s.prefix.Bits()),
			DHCP: &libvirtxml.NetworkDHCP{},
		}},
	}
	var out []generator.Asset
	var names []string
	for _, n := range c.Machines() {
		net.IPs[0].DHCP.Hosts = append(net.IPs[0].DHCP.Hosts, libvirtxml.NetworkDHCPHost{MAC: macs[n.Name], Name: n.Name, IP: n.IP})
		dom, err := xmlOf(s.domain(c, n, macs[n.Name]))
		if err != nil {
			return nil, fmt.Errorf("domain of %s: %w", n.Name, err)
		}
		out = append(out,
			generator.Asset{Path: path.Join(Dir, "domains", n.Name+".xml"), Kind: KindDomain, Node: n.Name, Role: n.Role, Mode: 0o644, Data: dom},
			generator.Asset{Path: path.Join(Dir, "ignition", n.Name+".ign"), Kind: KindIgnition, Node: n.Name, Role: n.Role, Mode: 0o600, Data: configs[n.Name].Data},
		)
		names = append(names, n.Name)
	}
	network, err := xmlOf(&net)
	if err != nil {
		return nil, err
	}
	out = append(out,
		generator.Asset{Path: NetworkPath, Kind: KindNetwork, Mode: 0o644, Data: network},
		generator.Asset{Path: ScriptPath, Kind: KindScript, Mode: 0o755, Data: []byte(s.script(c, names))},
	)
	return out, nil
}

// domain is machine n's domain: its CPUs and memory, its overlay disk, its interface on the
// cluster's network with its MAC, a serial console, and its Ignition config through fw_cfg.
func (s settings) domain(c *spec.Cluster, n spec.Node, mac string) *libvirtxml.Domain {
	arch, machine := "x86_64", "q35"
	if c.Arch == "arm64" {
		arch, machine = "aarch64", "virt"
	}
	cpus, memory := s.cpus[n.Role], s.memory[n.Role]
	return &libvirtxml.Domain{
		Type:        "kvm",
		Name:        s.domainName(c, n.Name),
		Description: fmt.Sprintf("%s %s of cluster %s (liftoff)", n.Role, n.Name, c.Name),
		Memory:      &libvirtxml.DomainMemory{Value: uint(memory), Unit: "MiB"},
		VCPU:        &libvirtxml.DomainVCPU{Value: uint(cpus)},
		CPU:         &libvirtxml.DomainCPU{Mode: "host-passthrough"},
		SysInfo: []libvirtxml.DomainSysInfo{{FWCfg: &libvirtxml.DomainSysInfoFWCfg{Entry: []libvirtxml.DomainSysInfoEntry{
			{Name: fwCfgName(c.OS), File: s.ignitionPath(c, n.Name)},
		}}}},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: arch, Machine: machine, Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.diskPath(c, n.Name)}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				MAC:    &libvirtxml.DomainInterfaceMAC{Address: mac},
				Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.network}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			Serials:  []libvirtxml.DomainSerial{{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}}},
			Consoles: []libvirtxml.DomainConsole{{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}, Target: &libvirtxml.DomainConsoleTarget{Type: "serial"}}},
			RNGs:     []libvirtxml.DomainRNG{{Model: "virtio", Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}}}},
		},
	}
}

// domainName, diskPath and ignitionPath name a machine's domain and its files on the host.
func (s settings) domainName(c *spec.Cluster, node string) string { return c.Name + "-" + node }
func (s settings) diskPath(c *spec.Cluster, node string) string {
	return path.Join(s.poolDir, s.domainName(c, node)+".qcow2")
}
func (s settings) ignitionPath(c *spec.Cluster, node string) string {
	return path.Join(s.poolDir, s.domainName(c, node)+".ign")
}

// fwCfgName is the QEMU fw_cfg entry each OS reads its Ignition config from.
func fwCfgName(os string) string {
	if os == spec.OSFCOS {
		return "opt/com.coreos/config"
	}
	return "opt/org.flatcar-linux/config"
}

func xmlOf(v interface{ Marshal() (string, error) }) ([]byte, error) {
	doc, err := v.Marshal()
	if err != nil {
		return nil, err
	}
	return []byte(doc + "\n"), nil
}

// script creates the cluster on the libvirt host it runs on: the machines' disks as overlays of the
// OS image and their Ignition configs in the pool directory (readable by QEMU only), the network,
// and the domains, which it starts. What exists already is left alone, so it can run again after a
// failure. LIBVIRT_DEFAULT_URI (default qemu:///system) chooses the libvirt connection;
// QEMU_USER the account QEMU runs as (found among libvirt-qemu and qemu when unset).
func (s settings) script(c *spec.Cluster, nodes []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w(`#!/bin/bash
# Creates cluster %[1]s on this libvirt host (rendered by liftoff; run it from its directory).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
uri=${LIBVIRT_DEFAULT_URI:-qemu:///system}
qemu_user=${QEMU_USER:-}
if [ -z "$qemu_user" ]; then
  for u in libvirt-qemu qemu; do
    if id -u "$u" >/dev/null 2>&1; then qemu_user=$u; break; fi
  done
fi
image=%[2]s
pool=%[3]s
if [ ! -f "$image" ]; then
  echo "create.sh: the OS image $image is not on this host" >&2
  exit 1
fi
mkdir -p "$pool"
commands=()
`, c.Name, shellQuote(s.image), shellQuote(s.poolDir))
	w("if ! virsh -c \"$uri\" -q net-info %[1]s >/dev/null 2>&1; then\n  commands+=(\"net-define --validate network.xml\" \"net-autostart %[1]s\" \"net-start %[1]s\")\nfi\n", shellQuote(s.network))
	for _, n := range nodes {
		name := s.domainName(c, n)
		w(`if ! virsh -c "$uri" -q dominfo %[1]s >/dev/null 2>&1; then
  [ -f %[2]s ] || qemu-img create -q -f qcow2 -F qcow2 -b "$image" %[2]s %[3]dG
  install -m 0600 ignition/%[4]s.ign %[5]s
  if [ -n "$qemu_user" ]; then chown "$qemu_user" %[5]s; fi
  commands+=("define --validate domains/%[4]s.xml" "start %[1]s")
fi
`, shellQuote(name), shellQuote(s.diskPath(c, n)), s.diskSize, n, shellQuote(s.ignitionPath(c, n)))
	}
	w(`if [ ${#commands[@]} -gt 0 ]; then
  virsh -c "$uri" "$(IFS=';'; echo "${commands[*]}")"
fi
`)
	return b.String()
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// gatewayOf is the first host address of a prefix: the libvirt network's own.
func gatewayOf(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }
