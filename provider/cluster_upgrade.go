package provider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// Schema version 0 kept controllers and workers as lists of objects with a name. A list position is
// not an identity: removing the first worker shifted every later one, so plans showed changes to
// machines that had none. Version 1 keys machines by name, and adds worker pools, the CNI plugins'
// delivery, a platform and the configs' digests; the upgrade derives the digests from the configs.

// UpgradeState moves older states to the current schema version. Version 0's state is read as the
// JSON terraform stored, so no schema or model of it has to be kept.
func (r *clusterResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{0: {StateUpgrader: upgradeClusterV0}}
}

func upgradeClusterV0(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
	if req.RawState == nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", "terraform sent no state to upgrade")
		return
	}
	state := map[string]any{}
	if err := json.Unmarshal(req.RawState.JSON, &state); err != nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
		return
	}
	next, err := upgradedV0(state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
		return
	}
	raw, err := json.Marshal(next)
	if err != nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
		return
	}
	// Attributes version 0 did not have are null.
	resp.DynamicValue = &tfprotov6.DynamicValue{JSON: raw}
}

// upgradedV0 is a version 0 state's attributes as version 1 keeps them.
func upgradedV0(state map[string]any) (map[string]any, error) {
	for _, role := range []string{"controllers", "workers"} {
		list, ok := state[role].([]any)
		if !ok {
			continue // null
		}
		byName := make(map[string]any, len(list))
		for _, m := range list {
			machine, ok := m.(map[string]any)
			name, named := machine["name"].(string)
			if !ok || !named {
				return nil, fmt.Errorf("%s: a machine without a name", role)
			}
			delete(machine, "name")
			byName[name] = machine
		}
		state[role] = byName
	}
	if ign, ok := state["ignition"].(map[string]any); ok && state["ignition_sha256"] == nil {
		configs := make(map[string]string, len(ign))
		for name, cfg := range ign {
			configs[name], _ = cfg.(string)
		}
		state["ignition_sha256"] = digests(configs)
	}
	for _, a := range []string{"worker_pool_ignition", "worker_pool_ignition_sha256"} {
		if state[a] == nil {
			state[a] = map[string]any{}
		}
	}
	return state, nil
}
