package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	// Every platform adapter, so that spec.Complete checks a platform's settings (render.Cluster
	// renders its files), as in the CLI.
	_ "github.com/liftoff-k8s/liftoff/platforms/all"
	"github.com/liftoff-k8s/liftoff/spec"
)

// platformModel is the spec's platform block: exactly one of its settings objects is set.
type platformModel struct {
	Matchbox types.Object `tfsdk:"matchbox"`
	AWS      types.Object `tfsdk:"aws"`
	Vagrant  types.Object `tfsdk:"vagrant"`
}

type matchboxModel struct {
	HTTPEndpoint types.String `tfsdk:"matchbox_http_endpoint"`
	OSChannel    types.String `tfsdk:"os_channel"`
	OSVersion    types.String `tfsdk:"os_version"`
	CachedAssets types.Bool   `tfsdk:"cached_assets"`
	InstallDisk  types.String `tfsdk:"install_disk"`
	KernelArgs   types.List   `tfsdk:"kernel_args"`
}

type awsModel struct {
	Region                  types.String `tfsdk:"region"`
	Bucket                  types.String `tfsdk:"bucket"`
	Prefix                  types.String `tfsdk:"prefix"`
	ConfigBaseURL           types.String `tfsdk:"config_base_url"`
	AMI                     types.String `tfsdk:"ami"`
	ControllerInstanceType  types.String `tfsdk:"controller_instance_type"`
	WorkerInstanceType      types.String `tfsdk:"worker_instance_type"`
	WorkerPoolInstanceTypes types.Map    `tfsdk:"worker_pool_instance_types"`
	EtcdVolumeIDs           types.Map    `tfsdk:"etcd_volume_ids"`
	EtcdVolumeDevice        types.String `tfsdk:"etcd_volume_device"`
	EtcdVolumeSize          types.Int64  `tfsdk:"etcd_volume_size"`
}

type vagrantModel struct {
	Box              types.String `tfsdk:"box"`
	BoxURL           types.String `tfsdk:"box_url"`
	BoxVersion       types.String `tfsdk:"box_version"`
	ControllerCPUs   types.Int64  `tfsdk:"controller_cpus"`
	ControllerMemory types.Int64  `tfsdk:"controller_memory"`
	WorkerCPUs       types.Int64  `tfsdk:"worker_cpus"`
	WorkerMemory     types.Int64  `tfsdk:"worker_memory"`
}

func platformAttribute() schema.SingleNestedAttribute {
	requiredString := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Required: true, MarkdownDescription: desc}
	}
	optionalInt := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, MarkdownDescription: desc}
	}
	stringMap := func(desc string) schema.MapAttribute {
		return schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: desc}
	}
	return schema.SingleNestedAttribute{
		Optional: true,
		MarkdownDescription: "Where the cluster runs, as the spec's `platform` block: set exactly one of `matchbox`, `aws` " +
			"or `vagrant`. The platform's files (matchbox groups and profiles, EC2 user data, a Vagrantfile) are " +
			"exported in `platform_assets`.",
		Attributes: map[string]schema.Attribute{
			"matchbox": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Bare metal booted over the network by matchbox. Every machine needs a `mac`.",
				Attributes: map[string]schema.Attribute{
					"matchbox_http_endpoint": requiredString("Where machines reach matchbox, like `http://matchbox.example.com:8080`."),
					"os_channel":             optionalString("The release channel: `stable` (default), `beta`, `alpha` or `lts` for Flatcar; `stable`, `testing` or `next` for Fedora CoreOS."),
					"os_version":             requiredString("The release to PXE-boot and install, like `4230.2.3` (Flatcar; `current` follows the channel) or `42.20250901.3.0` (Fedora CoreOS)."),
					"cached_assets":          schema.BoolAttribute{Optional: true, MarkdownDescription: "Serve kernels, initramfs and install images from matchbox's `/assets/` instead of the OS's release servers."},
					"install_disk":           optionalString("The disk the OS is installed to (default `/dev/sda`); a machine's `install_disk` overrides it."),
					"kernel_args":            optionalStrings("Added to the PXE kernel command line, like `console=ttyS0,115200n8`."),
				},
			},
			"aws": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "EC2 with launch templates whose user data points at the full configs in S3.",
				Attributes: map[string]schema.Attribute{
					"region":                     requiredString("The AWS region."),
					"bucket":                     requiredString("The S3 bucket that holds the full Ignition configs."),
					"prefix":                     optionalString("The key prefix of the configs in the bucket (default: the cluster name)."),
					"config_base_url":            optionalString("An `https://` URL that serves the bucket's objects (a VPC endpoint or a proxy), used in user data instead of `s3://BUCKET`."),
					"ami":                        optionalString("The image the launch templates boot; the Terraform configuration may look it up instead."),
					"controller_instance_type":   optionalString("The controllers' instance type."),
					"worker_instance_type":       optionalString("The workers' instance type."),
					"worker_pool_instance_types": stringMap("A worker pool's instance type by pool name; other pools run `worker_instance_type`."),
					"etcd_volume_ids":            stringMap("The EBS volume (`vol-...`) holding each controller's etcd data, by controller name."),
					"etcd_volume_device":         optionalString("The etcd volume's device path when volume IDs are not known when rendering, like `/dev/xvdf`."),
					"etcd_volume_size":           optionalInt("The size of each controller's etcd volume in GiB (default 20)."),
				},
			},
			"vagrant": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Local virtual machines described by a Vagrantfile.",
				Attributes: map[string]schema.Attribute{
					"box":               optionalString("The Vagrant box every machine boots; it must be one of the cluster's OS."),
					"box_url":           optionalString("Where to fetch the box."),
					"box_version":       optionalString("The box's version."),
					"controller_cpus":   optionalInt("CPUs per controller."),
					"controller_memory": optionalInt("Memory per controller (MiB)."),
					"worker_cpus":       optionalInt("CPUs per worker."),
					"worker_memory":     optionalInt("Memory per worker (MiB)."),
				},
			},
		},
	}
}

// platformOf builds the spec's platform from the platform argument. Its kind is the first of the
// settings that is set; spec.Complete reports none or several.
func platformOf(ctx context.Context, o types.Object, diags *diag.Diagnostics) *spec.Platform {
	if o.IsNull() {
		return nil
	}
	var pm platformModel
	opts := basetypes.ObjectAsOptions{}
	if diags.Append(o.As(ctx, &pm, opts)...); diags.HasError() {
		return nil
	}
	strs := func(l types.List) []string { return listOf(ctx, l, diags) }
	strMap := func(m types.Map) map[string]string { return mapOf(ctx, m, diags) }
	p := &spec.Platform{}
	kind := func(k string) {
		if p.Kind == "" {
			p.Kind = k
		}
	}
	if !pm.AWS.IsNull() {
		var a awsModel
		diags.Append(pm.AWS.As(ctx, &a, opts)...)
		p.AWS = &spec.AWSPlatform{Region: a.Region.ValueString(), Bucket: a.Bucket.ValueString(), Prefix: a.Prefix.ValueString(),
			ConfigBaseURL: a.ConfigBaseURL.ValueString(), AMI: a.AMI.ValueString(),
			ControllerInstanceType: a.ControllerInstanceType.ValueString(), WorkerInstanceType: a.WorkerInstanceType.ValueString(),
			WorkerPoolInstanceTypes: strMap(a.WorkerPoolInstanceTypes), EtcdVolumeIDs: strMap(a.EtcdVolumeIDs),
			EtcdVolumeDevice: a.EtcdVolumeDevice.ValueString(), EtcdVolumeSize: int(a.EtcdVolumeSize.ValueInt64())}
		kind(spec.PlatformAWS)
	}
	if !pm.Matchbox.IsNull() {
		var m matchboxModel
		diags.Append(pm.Matchbox.As(ctx, &m, opts)...)
		p.Matchbox = &spec.MatchboxPlatform{HTTPEndpoint: m.HTTPEndpoint.ValueString(), OSChannel: m.OSChannel.ValueString(),
			OSVersion: m.OSVersion.ValueString(), CachedAssets: m.CachedAssets.ValueBool(), InstallDisk: m.InstallDisk.ValueString(),
			KernelArgs: strs(m.KernelArgs)}
		kind(spec.PlatformMatchbox)
	}
	if !pm.Vagrant.IsNull() {
		var v vagrantModel
		diags.Append(pm.Vagrant.As(ctx, &v, opts)...)
		p.Vagrant = &spec.VagrantPlatform{Box: v.Box.ValueString(), BoxURL: v.BoxURL.ValueString(), BoxVersion: v.BoxVersion.ValueString(),
			ControllerCPUs: int(v.ControllerCPUs.ValueInt64()), ControllerMemory: int(v.ControllerMemory.ValueInt64()),
			WorkerCPUs: int(v.WorkerCPUs.ValueInt64()), WorkerMemory: int(v.WorkerMemory.ValueInt64())}
		kind(spec.PlatformVagrant)
	}
	return p
}
