package platforms

import (
	"fmt"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
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

// ButaneHeader is the first two lines of a Butane config for the cluster's OS.
func ButaneHeader(c *spec.Cluster) string {
	variant, version := butane.Header(c.OS)
	return "variant: " + variant + "\nversion: " + version + "\n"
}
