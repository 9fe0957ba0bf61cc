// Package matchbox renders a cluster for bare metal booted over the network by matchbox: a matchbox
// data directory (groups, profiles and Ignition configs) that `matchbox -data-path DIR/matchbox`
// serves as it is, and that the matchbox Terraform provider can write through matchbox's API.
//
// Every machine has two groups, both selected by its MAC address. The install group PXE-boots the
// OS and installs it to disk: Flatcar in two stages (a PXE-booted Flatcar whose install config runs
// flatcar-install with the final config), Fedora CoreOS in one (the live image's coreos-installer
// fetches the final config itself). Machines that install to the same disk share one install
// profile: iPXE puts the machine's MAC into the final config's URL on the kernel command line. The
// final group, which also selects os=installed and so wins for requests that carry it, serves the
// machine's rendered Ignition config.
//
// When the machines fetch their secrets (machine_secrets.server), a machine's config holds only
// its own files and merges its role's shared config, which matchbox serves by a group of the role,
// verified by its sha512.
package matchbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Asset kinds of the matchbox data directory.
const (
	KindGroup    generator.Kind = "matchbox-group"
	KindProfile  generator.Kind = "matchbox-profile"
	KindIgnition generator.Kind = "matchbox-ignition"
)

// DataDir is the matchbox data directory inside an output directory.
const DataDir = "matchbox"

// Adapter is the matchbox platform.
type Adapter struct{}

func init() { platforms.Register(Adapter{}) }

// Summary says what the platform is.
func (Adapter) Summary() string {
	return "Bare metal booted over the network by matchbox. Every machine needs a `mac`."
}

// NewSettings returns empty Settings.
func (Adapter) NewSettings() any { return &Settings{} }

// Kind is "matchbox".
func (Adapter) Kind() string { return spec.PlatformMatchbox }

// group and profile are matchbox's storage formats (storagepb.RichGroup and storagepb.Profile).
type group struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Profile  string            `json:"profile"`
	Selector map[string]string `json:"selector"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

type profile struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Boot       *netBoot `json:"boot,omitempty"`
	IgnitionID string   `json:"ignition_id,omitempty"`
}

// RoleConfigURL serves each role's shared config from matchbox, by the role's group, when the
// machines fetch their secrets: the configs matchbox serves then hold no secret, and a machine's own
// config is the few files that are its own.
func (Adapter) RoleConfigURL(c *spec.Cluster) func(role string) string {
	if !c.FetchesSecrets() {
		return nil
	}
	s := settingsOf(c)
	return func(role string) string { return s.endpoint + "/ignition?" + roleQuery(c, role) }
}

// roleQuery selects a role's group: no machine's request carries cluster or role.
func roleQuery(c *spec.Cluster, role string) string {
	return url.Values{"cluster": {c.Name}, "role": {role}}.Encode()
}

// roleID names a role's group, profile and config: machines' IDs are CLUSTER-NAME with NAME a DNS
// label, so a dot keeps the two apart.
func roleID(c *spec.Cluster, role string) string { return c.Name + "." + role }

// installID names the install profile (and Flatcar's install config) of the machines that install
// to disk, after the disk's path, which stays the same as machines come and go.
func installID(c *spec.Cluster, disk string) string {
	sum := sha256.Sum256([]byte(disk))
	return c.Name + ".install-" + hex.EncodeToString(sum[:4])
}

// Render writes each machine's install and final groups and profiles and their Ignition configs,
// and a group, profile and config for each role's shared config.
func (Adapter) Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	configs, err := platforms.MachineIgnition(c, a)
	if err != nil {
		return nil, err
	}
	s := settingsOf(c)
	machines := c.Machines()
	out := make([]generator.Asset, 0, 6*len(machines))
	for _, f := range a.Files {
		if f.Kind != generator.KindRoleIgnition {
			continue
		}
		id := roleID(c, f.Role)
		p := profile{ID: id, Name: fmt.Sprintf("%s: what every %s shares", c.Name, f.Role), IgnitionID: id + ".ign"}
		g := group{ID: id, Name: p.Name, Profile: id, Selector: map[string]string{"cluster": c.Name, "role": f.Role},
			Metadata: map[string]string{"cluster": c.Name, "role": f.Role}}
		role := func(a generator.Asset) generator.Asset { a.Role = f.Role; return a }
		for _, v := range []struct {
			dir  string
			kind generator.Kind
			v    any
		}{{"profiles", KindProfile, p}, {"groups", KindGroup, g}} {
			data, err := encode(v.v)
			if err != nil {
				return nil, err
			}
			out = append(out, role(generator.Asset{Path: path.Join(DataDir, v.dir, id+".json"), Kind: v.kind, Mode: 0o644, Data: data}))
		}
		out = append(out, role(generator.Asset{Path: path.Join(DataDir, "ignition", id+".ign"), Kind: KindIgnition, Mode: 0o644, Data: f.Data}))
	}
	// The install stage: one profile (and, for Flatcar, one install config) per install disk.
	installs := map[string]string{} // install profile by disk
	for _, n := range machines {
		disk := s.installDisk(n)
		if _, done := installs[disk]; done {
			continue
		}
		id := installID(c, disk)
		installs[disk] = id
		p := profile{ID: id, Name: fmt.Sprintf("%s: install %s %s to %s", c.Name, osName(c.OS), s.version, disk)}
		switch c.OS {
		case spec.OSFCOS:
			b := s.fcosBoot(c.Arch, disk)
			p.Boot = &b
		default:
			b := s.flatcarBoot(c.Arch)
			p.Boot = &b
			p.IgnitionID = id + ".ign"
			cfg, err := s.flatcarInstall(c, disk)
			if err != nil {
				return nil, fmt.Errorf("install config for %s: %w", disk, err)
			}
			out = append(out, generator.Asset{Path: path.Join(DataDir, "ignition", p.IgnitionID), Kind: KindIgnition, Mode: 0o644, Data: cfg})
		}
		data, err := encode(p)
		if err != nil {
			return nil, err
		}
		out = append(out, generator.Asset{Path: path.Join(DataDir, "profiles", id+".json"), Kind: KindProfile, Mode: 0o644, Data: data})
	}
	for _, n := range machines {
		final := c.Name + "-" + n.Name
		install := final + "-install"
		meta := map[string]string{"cluster": c.Name, "node": n.Name, "role": n.Role}
		own := func(a generator.Asset) generator.Asset {
			a.Node, a.Role = n.Name, n.Role
			return a
		}
		finalProfile := profile{ID: final, Name: fmt.Sprintf("%s: %s %s", n.Name, n.Role, c.Name), IgnitionID: final + ".ign"}

		for _, f := range []struct {
			id   string
			kind generator.Kind
			v    any
		}{
			{final, KindProfile, finalProfile},
			{install, KindGroup, group{ID: install, Name: fmt.Sprintf("%s: install %s %s to %s", n.Name, osName(c.OS), s.version, s.installDisk(n)),
				Profile: installs[s.installDisk(n)], Selector: map[string]string{"mac": n.MAC}, Metadata: meta}},
			{final, KindGroup, group{ID: final, Name: finalProfile.Name, Profile: final, Selector: map[string]string{"mac": n.MAC, "os": "installed"}, Metadata: meta}},
		} {
			data, err := encode(f.v)
			if err != nil {
				return nil, err
			}
			dir := "profiles"
			if f.kind == KindGroup {
				dir = "groups"
			}
			out = append(out, own(generator.Asset{Path: path.Join(DataDir, dir, f.id+".json"), Kind: f.kind, Mode: 0o644, Data: data}))
		}
		// The final config is served byte for byte as the generator rendered it.
		out = append(out, own(generator.Asset{Path: path.Join(DataDir, "ignition", final+".ign"), Kind: KindIgnition, Mode: 0o600, Data: configs[n.Name].Data}))
	}
	return out, nil
}

// encode writes indented JSON with URLs left readable (no \u0026 for &).
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func osName(os string) string {
	if os == spec.OSFCOS {
		return "Fedora CoreOS"
	}
	return "Flatcar"
}
