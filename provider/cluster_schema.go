package provider

import (
	"reflect"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/liftoff-k8s/liftoff/spec"
)

// clusterSchemaVersion is the version of liftoff_cluster's state; clusterUpgraders move older states to it.
const clusterSchemaVersion = 2

// clusterOutputs are what a render exports.
type clusterOutputs struct {
	Ignition        types.Map    `tfsdk:"ignition"`
	IgnitionSHA256  types.Map    `tfsdk:"ignition_sha256"`
	PoolIgnition    types.Map    `tfsdk:"worker_pool_ignition"`
	PoolSHA256      types.Map    `tfsdk:"worker_pool_ignition_sha256"`
	RoleIgnition    types.Map    `tfsdk:"role_ignition"`
	AdminKubeconfig types.String `tfsdk:"admin_kubeconfig"`
	CACertificate   types.String `tfsdk:"ca_certificate"`
	Certificates    types.List   `tfsdk:"certificates"`
	AssetIndex      types.String `tfsdk:"asset_index"`
	PlatformAssets  types.Map    `tfsdk:"platform_assets"`
	KeyMaterial     types.Map    `tfsdk:"key_material"`
}

type certificateModel struct {
	Path     types.String `tfsdk:"path"`
	Subject  types.String `tfsdk:"subject"`
	NotAfter types.String `tfsdk:"not_after"`
}

var (
	certificateType = types.ObjectType{AttrTypes: map[string]attr.Type{
		"path": types.StringType, "subject": types.StringType, "not_after": types.StringType,
	}}
)

func clusterSchema() schema.Schema {
	return schema.Schema{
		Version: clusterSchemaVersion,
		MarkdownDescription: "Renders a Kubernetes cluster for Flatcar Container Linux or Fedora CoreOS: its PKI, kubeconfigs, " +
			"manifests and one Ignition config per machine.\n\n" +
			"The arguments mirror the `liftoff` CLI's spec and are checked by the same code, with the same messages. " +
			"Key material is generated on the first apply and kept in state; later plans render with it, so a plan " +
			"shows exactly which machines' configs change and nothing is regenerated. A plan warns when a certificate " +
			"enters the renewal window (`renew_before`), and the apply renews it with the same CA.",
		Attributes: clusterAttributes(map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster's name at creation.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"rotate_bootstrap_tokens": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Replaces the bootstrap token of a worker pool or machine, by name, whenever its value changes " +
					"(any string: a date, a counter), as `liftoff token rotate` does. Only that pool's or machine's Ignition " +
					"config changes; machines that have joined keep their client certificates. `liftoff_bootstrap` then " +
					"deletes the old token from the cluster."},
			"output_dir": schema.StringAttribute{Optional: true, MarkdownDescription: "A directory to write the render to, as `liftoff render --out` would: every file " +
				"plus `index.json`, replaced atomically on each apply and removed on destroy. Relative paths are relative " +
				"to the directory Terraform runs in; use `path.module` to be explicit."},

			"ignition": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "Each machine's Ignition config (JSON), the `bootstrap` machine's too, keyed by machine name. " +
					"Sensitive: the configs of controllers and the bootstrap machine hold private keys and every config holds the " +
					"bootstrap token, unless `machine_secrets.server` is set. With matchbox (which needs `machine_secrets.server`) " +
					"or with `role_config_url`, a machine's config holds only its own files and merges its role's shared " +
					"config (`role_ignition`) by URL and sha512: a change to the role's config changes every config of the role."},
			"ignition_sha256": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Each machine's Ignition config's SHA-256 (hex), keyed by machine name. Not sensitive, " +
					"so a plan shows which machines' configs change; a platform can replace a machine when its entry changes."},
			"worker_pool_ignition": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "Each worker pool's Ignition config (JSON), keyed by pool name."},
			"worker_pool_ignition_sha256": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Each worker pool's Ignition config's SHA-256 (hex), keyed by pool name."},
			"role_ignition": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Each role's shared Ignition config (JSON), keyed by role (`controller`, `worker`, " +
					"`bootstrap`), when machines merge them: with `role_config_url`, serve each at that URL; matchbox serves " +
					"them itself. Empty otherwise. A role's config holds no secret."},
			"admin_kubeconfig": schema.StringAttribute{Computed: true, Sensitive: true,
				MarkdownDescription: "A kubeconfig with cluster-admin rights."},
			"ca_certificate": schema.StringAttribute{Computed: true,
				MarkdownDescription: "The cluster CA's certificate (PEM)."},
			"certificates": schema.ListNestedAttribute{Computed: true,
				MarkdownDescription: "Every certificate of the cluster, in path order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"path":      schema.StringAttribute{Computed: true, MarkdownDescription: "Path in the render, like `pki/apiserver/c1.crt`."},
					"subject":   schema.StringAttribute{Computed: true, MarkdownDescription: "The certificate's subject."},
					"not_after": schema.StringAttribute{Computed: true, MarkdownDescription: "When it expires (RFC 3339, UTC)."},
				}}},
			"asset_index": schema.StringAttribute{Computed: true,
				MarkdownDescription: "The render's index, the `index.json` of an output directory: every file's path, kind, " +
					"machine, role and SHA-256, as compact JSON. `jsondecode(...).assets` lists them."},
			"platform_assets": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "The files of the `platform` (matchbox groups and profiles, EC2 user data, a " +
					"Vagrantfile, libvirt domains), keyed by path: every file of a kind the generator itself does not render. A platform file that " +
					"is byte for byte a machine's Ignition config is not repeated here: `asset_index` lists it with its machine, " +
					"and `ignition` holds it. Empty without a platform."},
			"key_material": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "The cluster's keys, certificates and bootstrap token, keyed by path under `pki/`. " +
					"Generated on the first apply and reused by every later one."},
		}),
	}
}

// clusterAttributes are the spec's settings as arguments (argAttributes) and liftoff_cluster's own
// attributes.
func clusterAttributes(own map[string]schema.Attribute) map[string]schema.Attribute {
	attrs := argAttributes(reflect.TypeOf(spec.Cluster{}), true)
	for name, a := range own {
		if _, ok := attrs[name]; ok {
			panic("liftoff_cluster's attribute " + name + " is also a spec setting")
		}
		attrs[name] = a
	}
	return attrs
}
