// Package render is liftoff's one render pipeline, which `liftoff render`, the Terraform provider,
// the local cluster harness and the tests all use: a completed spec goes through the generator with
// its platform's additions to each machine's config, the platform's own files are added, and the
// whole is sorted into the order the output directory's index lists.
package render

import (
	"fmt"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms"
	_ "github.com/liftoff-k8s/liftoff/platforms/all"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Cluster renders a spec that passed spec.Complete, with its platform's files.
func Cluster(c *spec.Cluster, opts generator.Options) (*generator.Result, error) {
	adapter, err := platforms.Of(c)
	if err != nil {
		return nil, err
	}
	if mc, ok := adapter.(platforms.MachineConfigurer); ok {
		add, err := mc.MachineConfigs(c)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", adapter.Kind(), err)
		}
		if add != nil {
			opts.MachineConfig = func(n spec.Node) (*igntypes.Config, error) {
				cfg, err := add(n)
				if err != nil {
					return nil, fmt.Errorf("platform %s: %w", adapter.Kind(), err)
				}
				return cfg, nil
			}
		}
	}
	if rs, ok := adapter.(platforms.RoleConfigServer); ok {
		opts.RoleConfigURL = rs.RoleConfigURL(c)
	}
	res, err := generator.Render(c, opts)
	if err != nil {
		return nil, err
	}
	extra, err := platforms.Render(c, res.Assets)
	if err != nil {
		return nil, err
	}
	res.Assets.Add(extra...)
	res.Assets.Sort()
	return res, nil
}

// Into renders a completed spec into the output directory dir, reusing the key material an earlier
// render left there (opts.Existing is set from it), and writes the result atomically: dir holds
// either the whole new render or what it held before.
func Into(c *spec.Cluster, dir string, opts generator.Options) (*generator.Result, error) {
	existing, _, err := outdir.Open(dir)
	if err != nil {
		return nil, err
	}
	opts.Existing = existing
	res, err := Cluster(c, opts)
	if err != nil {
		return nil, err
	}
	if err := outdir.Write(dir, res.Assets); err != nil {
		return nil, fmt.Errorf("writing %s: %w", dir, err)
	}
	return res, nil
}
