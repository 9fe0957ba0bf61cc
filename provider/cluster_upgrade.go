package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/liftoff-k8s/liftoff/generator"
)

// Schema version 0 kept controllers and workers as lists of objects with a name. A list position is
// not an identity: removing the first worker shifted every later one, so plans showed changes to
// machines that had none. Version 1 keys machines by name, and adds worker pools, the CNI plugins'
// delivery, a platform and the configs' digests; the upgrade derives the digests from the configs.
//
// Version 1's key_material also held the bootstrap tokens' Secret manifest, which every render makes
// again from the tokens: version 2 keeps only what a later render reuses (generator.Asset.KeyMaterial),
// all under pki/. Version 2 keeps asset_index as compact JSON, and adds role_ignition.

// UpgradeState moves older states to the current schema version. An older state is read as the
// JSON terraform stored, so no schema or model of it has to be kept.
func (r *clusterResource) UpgradeState(context.Context) map[int64]resource.StateUpgrader {
	return map[int64]resource.StateUpgrader{
		0: {StateUpgrader: upgradeClusterFrom(upgradedV0, upgradedV1)},
		1: {StateUpgrader: upgradeClusterFrom(upgradedV1)},
	}
}

// upgradeClusterFrom upgrades a state by the steps, in order.
func upgradeClusterFrom(steps ...func(map[string]any) (map[string]any, error)) func(context.Context, resource.UpgradeStateRequest, *resource.UpgradeStateResponse) {
	return func(ctx context.Context, req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse) {
		upgradeCluster(req, resp, steps)
	}
}

func upgradeCluster(req resource.UpgradeStateRequest, resp *resource.UpgradeStateResponse, steps []func(map[string]any) (map[string]any, error)) {
	if req.RawState == nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", "terraform sent no state to upgrade")
		return
	}
	state := map[string]any{}
	if err := json.Unmarshal(req.RawState.JSON, &state); err != nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
		return
	}
	var err error
	for _, step := range steps {
		if state, err = step(state); err != nil {
			resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
			return
		}
	}
	raw, err := json.Marshal(state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot upgrade the state", err.Error())
		return
	}
	// Attributes an older version did not have are null.
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

// upgradedV1 is a version 1 state's attributes as version 2 keeps them.
func upgradedV1(state map[string]any) (map[string]any, error) {
	if state["role_ignition"] == nil {
		state["role_ignition"] = map[string]any{} // version 1 rendered no role configs
	}
	if index, ok := state["asset_index"].(string); ok && index != "" {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(index)); err != nil {
			return nil, fmt.Errorf("asset_index: %w", err)
		}
		state["asset_index"] = b.String()
	}
	if keys, ok := state["key_material"].(map[string]any); ok {
		for p := range keys {
			if !strings.HasPrefix(p, generator.OutPKIDir+"/") {
				delete(keys, p)
			}
		}
	}
	return state, nil
}
