package provider

import (
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms"
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
// create), adding the files of the spec's platform, if it has one.
func renderCluster(c *spec.Cluster, keys map[string]string, now time.Time) (*outcome, error) {
	res, err := generator.Render(c, generator.Options{Now: now, Existing: keyFS(keys)})
	if err != nil {
		return nil, err
	}
	// The platform hook: a spec with a platform gets its adapter's files (matchbox profiles, cloud
	// user data), which renderedOf exports as platform_assets. liftoff_cluster does not set
	// spec.Platform from its arguments yet, so this adds nothing today.
	extra, err := platforms.Render(c, res.Assets)
	if err != nil {
		return nil, err
	}
	res.Assets.Add(extra...)
	res.Assets.Sort()
	out, err := renderedOf(res.Assets)
	if err != nil {
		return nil, err
	}
	return &outcome{out: out, uncertain: len(res.Changes) > 0, assets: res.Assets, changes: res.Changes}, nil
}
