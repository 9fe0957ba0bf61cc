package provider

import (
	"fmt"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
)

// outcome is a cluster's outputs after a render.
type outcome struct {
	out *rendered
	// uncertain is set when the render issued key material, which the apply issues afresh.
	uncertain bool
	assets    *generator.Assets
	changes   []generator.Change
}

// renderCluster renders the completed spec c with the key material of an earlier render (nil on
// create), issuing new bootstrap tokens for the owners in rotate, and adding the files of the spec's platform, if it has one.
func renderCluster(c *spec.Cluster, keys map[string]string, now time.Time, rotate ...string) (*outcome, error) {
	// A spec with a platform gets its adapter's files (matchbox profiles, cloud user data), which
	// renderedOf exports as platform_assets.
	res, err := render.Cluster(c, generator.Options{Now: now, Existing: keyFS(keys), RotateTokens: rotate})
	if err != nil {
		return nil, err
	}
	out, err := renderedOf(res.Assets)
	if err != nil {
		return nil, err
	}
	return &outcome{out: out, uncertain: len(res.Changes) > 0, assets: res.Assets, changes: res.Changes}, nil
}

// rotatedTokens are the token owners whose rotate_bootstrap_tokens value differs between before
// (the state's) and after (the plan's): their tokens are issued afresh.
func rotatedTokens(c *spec.Cluster, before, after map[string]string) ([]string, error) {
	owners, err := tokenOwners(c, after)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range sortedKeys(after) {
		if old, ok := before[name]; !ok || old != after[name] {
			out = append(out, owners[name])
		}
	}
	return out, nil
}

// tokenOwners maps each name of rotate_bootstrap_tokens to the owner of its token: a worker pool's
// or a machine's.
func tokenOwners(c *spec.Cluster, names map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for name := range names {
		owner, err := generator.TokenOwner(c, name)
		if err != nil {
			return nil, fmt.Errorf("rotate_bootstrap_tokens[%q]: %w", name, err)
		}
		out[name] = owner
	}
	return out, nil
}
