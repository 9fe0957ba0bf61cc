package provider

import (
	"context"
	"fmt"

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
	values := o.values()
	values["id"] = types.StringValue(assets.Cluster)
	values["name"] = types.StringValue(assets.Cluster)
	for name, v := range values {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(name), v)...)
	}
}
