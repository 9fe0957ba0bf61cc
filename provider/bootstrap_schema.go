package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
)

// bootstrapModel is liftoff_bootstrap's state and plan.
type bootstrapModel struct {
	ID         types.String `tfsdk:"id"`
	Dir        types.String `tfsdk:"dir"`
	Kubeconfig types.String `tfsdk:"kubeconfig"`
	Timeout    types.String `tfsdk:"timeout"`
	Manifests  types.Map    `tfsdk:"manifests"`
	bootstrapRecord
}

// bootstrapRecord is the cluster's bootstrap record (ConfigMap kube-system/liftoff-bootstrap) as
// liftoff_bootstrap exports it.
type bootstrapRecord struct {
	Mode      types.String `tfsdk:"mode"`
	Status    types.String `tfsdk:"status"`
	Completed types.String `tfsdk:"completed"`
	Stages    types.List   `tfsdk:"stages"`
	Handover  types.Object `tfsdk:"handover"`
}

var (
	stageType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"stage": types.StringType, "start": types.StringType, "end": types.StringType,
		"result": types.StringType, "detail": types.StringType,
	}}
	handoverType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"requests": types.Int64Type, "failed": types.Int64Type, "retried": types.Int64Type,
	}}
)

func bootstrapSchema() schema.Schema {
	return schema.Schema{
		MarkdownDescription: "Bootstraps a booted cluster from its rendered output directory, as `liftoff bootstrap --dir DIR` " +
			"does: waits for the API, applies the rendered manifests and waits until the control plane is Ready on " +
			"every controller. With `control_plane = \"self-hosted\"` this is the pivot from the bootstrap control " +
			"plane to the self-hosted one.\n\n" +
			"Each stage is recorded in the cluster, in the ConfigMap `kube-system/liftoff-bootstrap`, and exported " +
			"here. Bootstrap can always be run again: an apply after an interrupted or failed one resumes, and an " +
			"apply against a cluster already bootstrapped with the same manifests does nothing. Destroying the " +
			"resource leaves the cluster running.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The output directory, as `dir` gives it.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"dir": schema.StringAttribute{Required: true,
				MarkdownDescription: "The cluster's rendered output directory, as `liftoff render --out` or `liftoff_cluster`'s " +
					"`output_dir` writes it; use `liftoff_cluster.NAME.output_dir` so bootstrap runs after the render is " +
					"written. Relative paths are relative to the directory Terraform runs in. Changing it replaces the " +
					"resource: another directory is another cluster.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()}},
			"kubeconfig": schema.StringAttribute{Optional: true, MarkdownDescription: "A kubeconfig with cluster-admin rights. Default `DIR/" + bootstrap.AdminKubeconfig + "`."},
			"timeout": schema.StringAttribute{Optional: true, MarkdownDescription: "How long one apply may bootstrap before it gives up, saying what was still missing, " +
				"like `30m` (default `" + fmt.Sprintf("%.0fm", bootstrap.DefaultTimeout.Minutes()) + "`). Each stage also has a deadline of its own."},
			"manifests": schema.MapAttribute{Optional: true, Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The SHA-256 of each rendered manifest, keyed by its path in the output directory " +
					"(`" + generator.OutManifestDir + "/...`). A change re-runs bootstrap, which applies what changed and " +
					"waits for the control plane again. Set it from the render, as in the example, so that re-rendered " +
					"manifests show in the plan; left out, it holds what `DIR/" + generator.IndexPath + "` listed when " +
					"bootstrap last ran.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},

			"mode": schema.StringAttribute{Computed: true,
				MarkdownDescription: "The cluster's control-plane mode: `static` or `self-hosted`."},
			"status": schema.StringAttribute{Computed: true,
				MarkdownDescription: "What the cluster's record says: `complete`, `failed` or `in-progress`. Anything but " +
					"`complete` makes the next plan update the resource, which runs bootstrap again."},
			"completed": schema.StringAttribute{Computed: true,
				MarkdownDescription: "When bootstrap last completed (RFC 3339, UTC); null until it has."},
			"stages": schema.ListNestedAttribute{Computed: true,
				MarkdownDescription: "The stages of the last run, in order, as the cluster recorded them.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"stage":  schema.StringAttribute{Computed: true, MarkdownDescription: "The stage: `wait-for-api`, `namespaces`, `crds`, `manifests`, `control-plane`, `teardown` (self-hosted only) or `verify`."},
					"start":  schema.StringAttribute{Computed: true, MarkdownDescription: "When it started (RFC 3339, UTC)."},
					"end":    schema.StringAttribute{Computed: true, MarkdownDescription: "When it ended (RFC 3339, UTC); null while it runs."},
					"result": schema.StringAttribute{Computed: true, MarkdownDescription: "`done`, `failed`, or `started` while it runs."},
					"detail": schema.StringAttribute{Computed: true, MarkdownDescription: "Why it failed: what was still missing when it gave up."},
				}}},
			"handover": schema.SingleNestedAttribute{Computed: true,
				MarkdownDescription: "What a client calling the API through its endpoint saw while the control plane changed " +
					"under it during the last run that applied the manifests.",
				Attributes: map[string]schema.Attribute{
					"requests": schema.Int64Attribute{Computed: true, MarkdownDescription: "Requests made, one after another."},
					"failed":   schema.Int64Attribute{Computed: true, MarkdownDescription: "Requests that failed after the client's own retries."},
					"retried":  schema.Int64Attribute{Computed: true, MarkdownDescription: "Attempts that failed and were retried by the client."},
				}},
		},
	}
}
