package provider

import (
	"context"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/liftoff-k8s/liftoff/spec"
)

// mapOf is a map of strings in Go, nil when null.
func mapOf(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// completeSpec builds and validates the spec. Problems become errors on the attributes they are
// about, with the summary and detail the CLI prints for them.
func completeSpec(args tftypes.Value) (*spec.Cluster, diag.Diagnostics) {
	var diags diag.Diagnostics
	c, err := specOfArgs(args)
	if err != nil {
		diags.AddError("Unreadable arguments", err.Error())
		return nil, diags
	}
	full, err := spec.Complete(c)
	if inv, ok := spec.AsInvalid(err); ok {
		for i, d := range inv.Problems.Diagnostics(inv.Cluster) {
			diags.AddAttributeError(shownPath(attributePath(inv.Problems[i])), d.Summary, d.Detail)
		}
		return nil, diags
	}
	if err != nil {
		diags.AddError("Invalid cluster", err.Error())
		return nil, diags
	}
	return full, diags
}

// attributePath turns a problem's typed spec path (cluster pod_cidr, pki extra_sans [1], worker
// "node4" labels ["zone"], bootstrap "boot" ip, worker_pool "general" size, platform "matchbox"
// install_disk) into the path of the attribute the user wrote it in.
func attributePath(p spec.Problem) path.Path {
	steps := p.Path.Steps()
	if len(steps) == 0 || steps[0].Kind != spec.StepName {
		return path.Empty()
	}
	section, rest := steps[0].Name, steps[1:]
	labelled := len(rest) > 0 && rest[0].Kind == spec.StepLabel
	switch {
	case section == "cluster" && len(rest) == 0:
		// The cluster as a whole: its name.
		return path.Root("name")
	case section == "cluster":
		return follow(path.Empty(), rest)
	case section == spec.RoleBootstrap:
		// The one bootstrap machine is an object whose name is an attribute, not a key.
		if labelled {
			rest = rest[1:]
		}
		return follow(path.Root("bootstrap"), rest)
	case section == spec.RoleController || section == spec.RoleWorker || section == "worker_pool":
		root := path.Root(argName(section))
		if !labelled {
			return root
		}
		return follow(root.AtMapKey(rest[0].Name), rest[1:])
	case section == "platform":
		root := path.Root("platform")
		if !labelled {
			return root
		}
		return follow(root.AtName(rest[0].Name), rest[1:])
	}
	for arg, at := range hoistedArgs {
		if section == at[0] && len(rest) == 1 && rest[0].Name == at[1] {
			return path.Root(arg)
		}
	}
	return follow(path.Root(argName(section)), rest)
}

// shownPath shortens p to what terraform can find in a configuration: it locates a top-level
// argument and one element of it (a list item or map entry), but not an attribute inside a nested
// object, for which it would point at the resource block instead. The detail still names the field.
func shownPath(p path.Path) path.Path {
	steps := p.Steps()
	if len(steps) < 2 {
		return p
	}
	short := path.Root(string(steps[0].(path.PathStepAttributeName)))
	switch s := steps[1].(type) {
	case path.PathStepElementKeyString:
		return short.AtMapKey(string(s))
	case path.PathStepElementKeyInt:
		return short.AtListIndex(int(s))
	}
	return short
}

// follow appends typed steps to p: names as attributes, keys as map keys, indexes as list indexes.
func follow(p path.Path, steps []spec.Step) path.Path {
	for _, s := range steps {
		switch s.Kind {
		case spec.StepName, spec.StepLabel:
			if len(p.Steps()) == 0 {
				p = path.Root(s.Name)
			} else {
				p = p.AtName(s.Name)
			}
		case spec.StepKey:
			p = p.AtMapKey(s.Name)
		case spec.StepIndex:
			p = p.AtListIndex(s.Index)
		}
	}
	return p
}
