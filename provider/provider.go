package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/liftoff-k8s/liftoff"

var _ provider.Provider = &Provider{}

// Provider is the liftoff provider. It has no settings: everything it renders comes from the
// resources' arguments.
type Provider struct {
	version string
	// now is the clock certificates are issued and checked against; tests move it forward.
	now func() time.Time
}

// New returns a constructor of the provider at a release version, as providerserver expects.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version, now: time.Now} }
}

// Metadata names the provider.
func (p *Provider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "liftoff"
	resp.Version = p.version
}

// Schema is empty: the provider has no settings.
func (p *Provider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Renders Kubernetes clusters for Flatcar Container Linux and Fedora CoreOS: PKI, kubeconfigs " +
			"and one Ignition config per machine, from the same spec as the liftoff CLI, and bootstraps them once " +
			"their machines are booted. The provider has no settings.",
	}
}

// Configure has nothing to configure.
func (p *Provider) Configure(context.Context, provider.ConfigureRequest, *provider.ConfigureResponse) {
}

// Resources lists liftoff_cluster and liftoff_bootstrap.
func (p *Provider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		func() resource.Resource { return &clusterResource{now: p.now} },
		func() resource.Resource { return &bootstrapResource{} },
	}
}

// DataSources lists liftoff_butane.
func (p *Provider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		func() datasource.DataSource { return &butaneDataSource{} },
	}
}
