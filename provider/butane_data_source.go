package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/internal/versions"
)

var _ datasource.DataSource = &butaneDataSource{}

// butaneDataSource is liftoff_butane: Butane to Ignition for machines outside the cluster, with the
// same strict translation liftoff uses for its own snippets.
type butaneDataSource struct{}

type butaneModel struct {
	Content  types.String `tfsdk:"content"`
	Snippets types.List   `tfsdk:"snippets"`
	Rendered types.String `tfsdk:"rendered"`
}

func (d *butaneDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_butane"
}

func (d *butaneDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Translates a Butane config to an Ignition " + versions.IgnitionSpec + " config, for machines " +
			"outside a `liftoff_cluster`.\n\nTranslation is strict: anything Butane would accept only with a warning " +
			"(an unknown key, a deprecated field) is an error that names the line of the config it is on. The result " +
			"is checked with Ignition's own " + versions.IgnitionSpec + " parser.",
		Attributes: map[string]schema.Attribute{
			"content": schema.StringAttribute{Required: true, MarkdownDescription: "The Butane config (YAML), for example " +
				"`variant: flatcar` with `version: " + versions.ButaneFlatcar + "`, or `variant: fcos` with `version: " + versions.ButaneFCOS + "`."},
			"snippets": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "More Butane configs merged into `content`, in order; where both set the same value the snippet wins."},
			"rendered": schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: "The Ignition config (compact JSON). Sensitive: a config commonly carries keys and credentials, so Terraform does not show it in plans or output."},
		},
	}
}

func (d *butaneDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m butaneModel
	if resp.Diagnostics.Append(req.Config.Get(ctx, &m)...); resp.Diagnostics.HasError() {
		return
	}
	cfg, ok := translate(path.Root("content"), m.Content.ValueString(), &resp.Diagnostics)
	var snippets []string
	if !m.Snippets.IsNull() {
		resp.Diagnostics.Append(m.Snippets.ElementsAs(ctx, &snippets, false)...)
	}
	var merged []igntypes.Config
	for i, s := range snippets {
		if sc, sok := translate(path.Root("snippets").AtListIndex(i), s, &resp.Diagnostics); sok {
			merged = append(merged, sc)
		} else {
			ok = false
		}
	}
	if !ok || resp.Diagnostics.HasError() {
		return
	}
	raw, err := butane.Marshal(butane.Merge(cfg, merged...))
	if err != nil {
		resp.Diagnostics.AddError("Invalid Ignition config", "The merged configs do not make a valid Ignition config: "+err.Error())
		return
	}
	m.Rendered = types.StringValue(string(raw))
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// translate translates one Butane config, reporting each problem on at with the line it is on.
func translate(at path.Path, src string, diags *diag.Diagnostics) (igntypes.Config, bool) {
	cfg, err := butane.Translate([]byte(src))
	if err == nil {
		return cfg, true
	}
	var be *butane.Error
	if !errors.As(err, &be) {
		diags.AddAttributeError(at, "Invalid Butane config", err.Error())
		return cfg, false
	}
	for _, is := range be.Issues {
		detail := is.String()
		if is.Line > 0 {
			detail = fmt.Sprintf("line %d, column %d: %s", is.Line, is.Column, is.Message)
			if is.Path != "" {
				detail += " (at " + is.Path + ")"
			}
		}
		diags.AddAttributeError(at, "Invalid Butane config", detail)
	}
	return cfg, false
}
