package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/liftoff-k8s/liftoff/internal/outdir"
)

// ImportState adopts a cluster rendered by `liftoff render`: the import ID is the output directory.
// Its index.json and files become the state (key material, Ignition configs, kubeconfig), so the
// next plan renders with the CLI's keys and, for the same spec, changes no machine's config.
func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	assets, err := outdir.Read(req.ID)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import the output directory",
			fmt.Sprintf("The import ID is the directory `liftoff render --out` wrote: %v", err))
		return
	}
	out, err := renderedOf(assets)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import the output directory", fmt.Sprintf("%s: %v", req.ID, err))
		return
	}
	o, diags := out.outputs(nil, false)
	if resp.Diagnostics.Append(diags...); diags.HasError() {
		return
	}
	for name, v := range map[string]attr.Value{
		"id":                          types.StringValue(assets.Cluster),
		"name":                        types.StringValue(assets.Cluster),
		"ignition":                    o.Ignition,
		"ignition_sha256":             o.IgnitionSHA256,
		"worker_pool_ignition":        o.PoolIgnition,
		"worker_pool_ignition_sha256": o.PoolSHA256,
		"admin_kubeconfig":            o.AdminKubeconfig,
		"ca_certificate":              o.CACertificate,
		"certificates":                o.Certificates,
		"asset_index":                 o.AssetIndex,
		"platform_assets":             o.PlatformAssets,
		"key_material":                o.KeyMaterial,
	} {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(name), v)...)
	}
}
