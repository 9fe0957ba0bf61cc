package platforms

import (
	"crypto/sha256"
	"fmt"
	"net"

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

// MACs gives each machine the MAC of its spec, or one derived from the cluster's and machine's names
// (locally administered, in QEMU's 52:54:00 range), so that every render of a spec gives every
// machine the same address: platforms that create virtual machines use it.
func MACs(c *spec.Cluster) map[string]string {
	out := map[string]string{}
	used := map[string]bool{}
	for _, n := range c.Machines() {
		if n.MAC != "" {
			used[n.MAC] = true
		}
	}
	for _, n := range c.Machines() {
		if n.MAC != "" {
			out[n.Name] = n.MAC
			continue
		}
		for i := 0; ; i++ {
			sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%d", c.Name, n.Name, i))
			mac := net.HardwareAddr{0x52, 0x54, 0x00, sum[0], sum[1], sum[2]}.String()
			if !used[mac] {
				used[mac] = true
				out[n.Name] = mac
				break
			}
		}
	}
	return out
}
