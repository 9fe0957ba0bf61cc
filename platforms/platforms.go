// Package platforms turns a rendered cluster into what the machines' platform consumes: matchbox
// groups and profiles for bare metal, launch-template user data for AWS, a Vagrantfile for local
// virtual machines.
//
// Each platform is an Adapter in its own package (platforms/matchbox, platforms/aws,
// platforms/vagrant) that registers itself when imported; platforms/all imports every one. An adapter
// reads only the generator's Assets, never its internals, and returns files of its own kinds that the
// CLI and the Terraform provider add to the render.
package platforms

import (
	"fmt"
	"sync"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Adapter is one platform.
type Adapter interface {
	// Kind is the label of the spec's platform block, like "matchbox".
	Kind() string
	// Summary says in a sentence or two what the platform is, for docs and the Terraform schema.
	Summary() string
	// NewSettings returns new, empty settings of the platform block: a pointer to the platform's
	// Settings struct (see spec.PlatformDef).
	NewSettings() any
	// Validate checks a completed spec for what the platform needs; spec.Complete runs it.
	Validate(c *spec.Cluster) spec.Problems
	// Render returns the platform's files for a spec that passed spec.Complete and its rendered assets.
	Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error)
}

// MachineConfigurer is an Adapter that adds to the machines' own Ignition configs (a network
// unit, a volume's mount).
type MachineConfigurer interface {
	// MachineConfigs returns the function that gives what the platform adds to each machine's
	// Ignition config (a nil config for nothing). The generator merges it into the config it
	// renders (generator.Options.MachineConfig), so the config a machine boots is the one in
	// ignition/ and the index.
	MachineConfigs(c *spec.Cluster) (func(n spec.Node) (*igntypes.Config, error), error)
}

// RoleConfigServer is an Adapter that serves each role's shared Ignition config
// (generator.KindRoleIgnition) to the machines, so that a machine's own config holds only what is
// its own and merges the rest (generator.Options.RoleConfigURL).
type RoleConfigServer interface {
	// RoleConfigURL returns where machines fetch a role's shared config, or nil when the spec's
	// machines get whole configs.
	RoleConfigURL(c *spec.Cluster) func(role string) string
}

var registry = struct {
	sync.RWMutex
	m map[string]Adapter
}{m: map[string]Adapter{}}

// Register makes an adapter available to Render and its validation part of spec.Complete. Adapters
// call it from init.
func Register(a Adapter) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[a.Kind()]; dup {
		panic("platforms: " + a.Kind() + " registered twice")
	}
	registry.m[a.Kind()] = a
	spec.RegisterPlatform(spec.PlatformDef{Kind: a.Kind(), Summary: a.Summary(), Settings: a.NewSettings, Validate: a.Validate})
}

// Of returns the adapter of the spec's platform, or nil when the spec names none.
func Of(c *spec.Cluster) (Adapter, error) {
	if c.Platform == nil {
		return nil, nil
	}
	registry.RLock()
	adapter, ok := registry.m[c.Platform.Kind]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("platform %q is not built into this program (import github.com/liftoff-k8s/liftoff/platforms/all)", c.Platform.Kind)
	}
	return adapter, nil
}

// Render returns the files of the spec's platform, or nothing when the spec names none, for assets
// rendered with the platform's MachineConfig. Callers add them to the assets (Assets.Add, then
// Assets.Sort) so that they are written and indexed with the rest; render.Cluster does all of it.
func Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	adapter, err := Of(c)
	if adapter == nil || err != nil {
		return nil, err
	}
	out, err := adapter.Render(c, a)
	if err != nil {
		return nil, fmt.Errorf("platform %s: %w", c.Platform.Kind, err)
	}
	taken := make(map[string]bool, len(a.Files)+len(out))
	for _, f := range a.Files {
		taken[f.Path] = true
	}
	for _, f := range out {
		if taken[f.Path] {
			return nil, fmt.Errorf("platform %s: %s is rendered twice", c.Platform.Kind, f.Path)
		}
		taken[f.Path] = true
	}
	return out, nil
}
