package platforms

import (
	"encoding/json"
	"errors"
	"fmt"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Ignition maps each machine to its rendered Ignition config (the asset of kind ignition).
type Ignition map[string]*generator.Asset

// MachineIgnition collects the machines' Ignition configs from the assets and checks that every
// machine of the spec has one.
func MachineIgnition(c *spec.Cluster, a *generator.Assets) (Ignition, error) {
	out := Ignition{}
	for i := range a.Files {
		f := &a.Files[i]
		if f.Kind == generator.KindIgnition && f.Node != "" {
			out[f.Node] = f
		}
	}
	for _, n := range c.Machines() {
		if out[n.Name] == nil {
			return nil, fmt.Errorf("the render holds no Ignition config for machine %s", n.Name)
		}
	}
	return out, nil
}

// Translate turns a Butane config that a platform writes into a checked, compact Ignition config.
func Translate(src string) ([]byte, error) {
	cfg, err := butane.Translate([]byte(src))
	if err != nil {
		return nil, err
	}
	return butane.Marshal(cfg)
}

// Merge merges a Butane snippet that a platform writes into a machine's rendered Ignition config:
// the snippet's files, filesystems and units are added, as a user's snippet would be.
func Merge(rendered []byte, snippet string) ([]byte, error) {
	// The generator checked the config when it wrote it; Marshal checks the merged one.
	var base igntypes.Config
	if err := json.Unmarshal(rendered, &base); err != nil || base.Ignition.Version != versions.IgnitionSpec {
		return nil, fmt.Errorf("the rendered config is not an Ignition %s config (%v)", versions.IgnitionSpec, err)
	}
	add, err := butane.Translate([]byte(snippet))
	if err != nil {
		var be *butane.Error
		if errors.As(err, &be) {
			return nil, fmt.Errorf("platform snippet: %w\n%s", err, snippet)
		}
		return nil, err
	}
	return butane.Marshal(butane.Merge(base, add))
}

// ButaneHeader is the first two lines of a Butane config for the cluster's OS.
func ButaneHeader(c *spec.Cluster) string {
	variant, version := butane.Header(c.OS)
	return "variant: " + variant + "\nversion: " + version + "\n"
}
