package provider

import (
	"context"
	"maps"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Schema version 0 kept controllers and workers as lists of objects with a name. A list position is
// not an identity: removing the first worker shifted every later one, so plans showed changes to
// machines that had none. Version 1 keys machines by name, and adds worker pools, the CNI plugins'
// delivery, a platform and the configs' digests; the upgrade derives the digests from the configs.

type clusterModelV0 struct {
	clusterArgs
	Controllers types.List `tfsdk:"controllers"`
	Workers     types.List `tfsdk:"workers"`
	clusterOutputs
}

func clusterSchemaV0() *schema.Schema {
	s := clusterSchema()
	s.Version = 0
	s.Attributes = maps.Clone(s.Attributes)
	for _, role := range []string{"controller", "worker"} {
		s.Attributes[role+"s"] = schema.ListNestedAttribute{
			Required:     role == "controller",
			Optional:     role != "controller",
			NestedObject: schema.NestedAttributeObject{Attributes: namedMachineAttributes()},
		}
	}
	return &s
}

// UpgradeState moves older states to the current schema version.
func (r *clusterResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{
		0: {PriorSchema: clusterSchemaV0(), StateUpgrader: upgradeClusterV0},
	}
}

func upgradeClusterV0(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	var old clusterModelV0
	if resp.Diagnostics.Append(req.State.Get(ctx, &old)...); resp.Diagnostics.HasError() {
		return
	}
	var diags diag.Diagnostics
	next := clusterModel{clusterArgs: old.clusterArgs, clusterOutputs: old.clusterOutputs}
	next.Controllers = machinesByName(ctx, old.Controllers, &diags)
	next.Workers = machinesByName(ctx, old.Workers, &diags)
	if next.IgnitionSHA256.IsNull() && !next.Ignition.IsNull() {
		next.IgnitionSHA256 = stringMapValue(digests(mapOf(ctx, next.Ignition, &diags)), &diags)
	}
	if next.PoolIgnition.IsNull() {
		next.PoolIgnition = stringMapValue(nil, &diags)
		next.PoolSHA256 = stringMapValue(nil, &diags)
	}
	if resp.Diagnostics.Append(diags...); diags.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &next)...)
}

// machinesByName turns a version 0 machine list into a version 1 map keyed by name.
func machinesByName(ctx context.Context, list types.List, diags *diag.Diagnostics) types.Map {
	elem := clusterSchema().Attributes["controllers"].GetType().(types.MapType).ElemType
	if list.IsNull() {
		return types.MapNull(elem)
	}
	var machines []namedMachineModel
	if diags.Append(list.ElementsAs(ctx, &machines, false)...); diags.HasError() {
		return types.MapNull(elem)
	}
	byName := make(map[string]attr.Value, len(machines))
	for _, m := range machines {
		v, d := types.ObjectValueFrom(ctx, elem.(types.ObjectType).AttrTypes, m.machineModel)
		diags.Append(d...)
		byName[m.Name.ValueString()] = v
	}
	out, d := types.MapValue(elem, byName)
	diags.Append(d...)
	return out
}

func stringMapValue(m map[string]string, diags *diag.Diagnostics) types.Map {
	elems := make(map[string]attr.Value, len(m))
	for k, v := range m {
		elems[k] = types.StringValue(v)
	}
	out, d := types.MapValue(types.StringType, elems)
	diags.Append(d...)
	return out
}
