package provider

import (
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/spec"
)

// clusterSchemaVersion is the version of liftoff_cluster's state; clusterUpgraders move older states to it.
const clusterSchemaVersion = 1

// clusterArgs are liftoff_cluster's arguments besides the controllers and workers, shared by every
// schema version.
type clusterArgs struct {
	ID                   types.String `tfsdk:"id"`
	Name                 types.String `tfsdk:"name"`
	KubernetesVersion    types.String `tfsdk:"kubernetes_version"`
	OS                   types.String `tfsdk:"os"`
	ControlPlane         types.String `tfsdk:"control_plane"`
	APIServer            types.String `tfsdk:"api_server"`
	PodCIDR              types.String `tfsdk:"pod_cidr"`
	ServiceCIDR          types.String `tfsdk:"service_cidr"`
	HostCIDRs            types.List   `tfsdk:"host_cidrs"`
	ClusterDomain        types.String `tfsdk:"cluster_domain"`
	Networking           types.String `tfsdk:"networking"`
	SSHAuthorizedKeys    types.List   `tfsdk:"ssh_authorized_keys"`
	AllowEvenControllers types.Bool   `tfsdk:"allow_even_controllers"`
	Arch                 types.String `tfsdk:"arch"`
	RenewBefore          types.String `tfsdk:"renew_before"`
	PKI                  types.Object `tfsdk:"pki"`
	Images               types.Object `tfsdk:"images"`
	Kubelet              types.Object `tfsdk:"kubelet"`
	Etcd                 types.Object `tfsdk:"etcd"`
	CNIPlugins           types.Object `tfsdk:"cni_plugins"`
	EtcdSnapshots        types.Object `tfsdk:"etcd_snapshots"`
	EtcdRestore          types.Object `tfsdk:"etcd_restore"`
	MachineSecrets       types.Object `tfsdk:"machine_secrets"`
	ControllerDefaults   types.Object `tfsdk:"controller_defaults"`
	WorkerDefaults       types.Object `tfsdk:"worker_defaults"`
	WorkerPools          types.Map    `tfsdk:"worker_pools"`
	Bootstrap            types.Object `tfsdk:"bootstrap"`
	Platform             types.Object `tfsdk:"platform"`
	OutputDir            types.String `tfsdk:"output_dir"`
	RotateTokens         types.Map    `tfsdk:"rotate_bootstrap_tokens"`
}

// clusterOutputs are what a render exports.
type clusterOutputs struct {
	Ignition        types.Map    `tfsdk:"ignition"`
	IgnitionSHA256  types.Map    `tfsdk:"ignition_sha256"`
	PoolIgnition    types.Map    `tfsdk:"worker_pool_ignition"`
	PoolSHA256      types.Map    `tfsdk:"worker_pool_ignition_sha256"`
	AdminKubeconfig types.String `tfsdk:"admin_kubeconfig"`
	CACertificate   types.String `tfsdk:"ca_certificate"`
	Certificates    types.List   `tfsdk:"certificates"`
	AssetIndex      types.String `tfsdk:"asset_index"`
	PlatformAssets  types.Map    `tfsdk:"platform_assets"`
	KeyMaterial     types.Map    `tfsdk:"key_material"`
}

// clusterModel is liftoff_cluster's state and plan (schema version 1).
type clusterModel struct {
	clusterArgs
	Controllers types.Map `tfsdk:"controllers"`
	Workers     types.Map `tfsdk:"workers"`
	clusterOutputs
}

// machineModel is one machine; its name is its key in controllers or workers.
type machineModel struct {
	IP          types.String `tfsdk:"ip"`
	MAC         types.String `tfsdk:"mac"`
	Domain      types.String `tfsdk:"domain"`
	Labels      types.Map    `tfsdk:"labels"`
	Taints      types.List   `tfsdk:"taints"`
	Snippets    types.List   `tfsdk:"snippets"`
	InstallDisk types.String `tfsdk:"install_disk"`
}

// namedMachineModel is a machine whose name is an attribute rather than a key: the bootstrap machine,
// and the controllers and workers of schema version 0.
type namedMachineModel struct {
	Name types.String `tfsdk:"name"`
	machineModel
}

// workerPoolModel is a group of identical workers; its name is its key in worker_pools.
type workerPoolModel struct {
	Size     types.Int64 `tfsdk:"size"`
	MaxSize  types.Int64 `tfsdk:"max_size"`
	Labels   types.Map   `tfsdk:"labels"`
	Taints   types.List  `tfsdk:"taints"`
	Snippets types.List  `tfsdk:"snippets"`
}

type pkiModel struct {
	KeyAlgorithm types.String `tfsdk:"key_algorithm"`
	CAValidity   types.String `tfsdk:"ca_validity"`
	CertValidity types.String `tfsdk:"cert_validity"`
	ExtraSANs    types.List   `tfsdk:"extra_sans"`
	TokenTTL     types.String `tfsdk:"bootstrap_token_ttl"`
}

type imagesModel struct {
	KubeAPIServer         types.String `tfsdk:"kube_apiserver"`
	KubeControllerManager types.String `tfsdk:"kube_controller_manager"`
	KubeScheduler         types.String `tfsdk:"kube_scheduler"`
	KubeProxy             types.String `tfsdk:"kube_proxy"`
	CoreDNS               types.String `tfsdk:"coredns"`
	Flannel               types.String `tfsdk:"flannel"`
	FlannelCNIPlugin      types.String `tfsdk:"flannel_cni_plugin"`
	Pause                 types.String `tfsdk:"pause"`
	Liftoff               types.String `tfsdk:"liftoff"`
}

type programModel struct {
	Delivery types.String `tfsdk:"delivery"`
	Version  types.String `tfsdk:"version"`
	URL      types.String `tfsdk:"url"`
	SHA512   types.String `tfsdk:"sha512"`
	Image    types.String `tfsdk:"image"`
}

type etcdSnapshotsModel struct {
	Enabled  types.Bool   `tfsdk:"enabled"`
	Interval types.String `tfsdk:"interval"`
	Keep     types.Int64  `tfsdk:"keep"`
}

type machineSecretsModel struct {
	Server     types.String `tfsdk:"server"`
	InIgnition types.Bool   `tfsdk:"in_ignition"`
}

type etcdRestoreModel struct {
	URL    types.String `tfsdk:"url"`
	SHA256 types.String `tfsdk:"sha256"`
}

type roleDefaultsModel struct {
	Labels   types.Map  `tfsdk:"labels"`
	Taints   types.List `tfsdk:"taints"`
	Snippets types.List `tfsdk:"snippets"`
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

func optionalString(desc string) schema.StringAttribute {
	return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
}

func optionalStrings(desc string) schema.ListAttribute {
	return schema.ListAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: desc}
}

// machineAttributes are a machine's settings; names mirror the spec's controller and worker blocks.
func machineAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"ip":     schema.StringAttribute{Required: true, MarkdownDescription: "The machine's IPv4 address."},
		"mac":    optionalString("The MAC address of the machine's boot interface, like `52:54:00:a1:9c:ae` (platforms match machines by it)."),
		"domain": optionalString("The machine's DNS name; on a controller it is added to the API server and etcd certificates."),
		"labels": schema.MapAttribute{Optional: true, ElementType: types.StringType,
			MarkdownDescription: "Node labels, added to the role's `labels`."},
		"taints": optionalStrings("Node taints as `key=value:Effect` or `key:Effect`, added to the role's `taints`."),
		"snippets": optionalStrings("Butane configs (same variant as `os`) merged into this machine's Ignition config. " +
			"A snippet that Butane would accept only with a warning is refused, naming the snippet's line."),
		"install_disk": optionalString("The disk the OS is installed to on bare metal."),
	}
}

// namedMachineAttributes are a machine's settings and its name.
func namedMachineAttributes() map[string]schema.Attribute {
	attrs := machineAttributes()
	attrs["name"] = schema.StringAttribute{Required: true, MarkdownDescription: "The machine's name (the node name and hostname)."}
	return attrs
}

// bootstrapAttributes are the bootstrap machine's settings: a controller's, without role defaults'
// labels and taints.
func bootstrapAttributes() map[string]schema.Attribute {
	attrs := namedMachineAttributes()
	attrs["domain"] = optionalString("The machine's DNS name, added to the API server and etcd certificates.")
	attrs["labels"] = schema.MapAttribute{Optional: true, ElementType: types.StringType,
		MarkdownDescription: "Node labels; `controller_defaults`' labels do not apply."}
	attrs["taints"] = optionalStrings("Node taints as `key=value:Effect` or `key:Effect`; `controller_defaults`' taints do not apply.")
	attrs["snippets"] = optionalStrings("Butane configs (same variant as `os`) merged into this machine's Ignition config, " +
		"with `controller_defaults`' snippets. A snippet that Butane would accept only with a warning is refused, naming the snippet's line.")
	return attrs
}

func roleDefaultsAttribute(role string) schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Optional:            true,
		MarkdownDescription: "Settings every " + role + " gets, merged with each machine's own.",
		Attributes: map[string]schema.Attribute{
			"labels":   schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Node labels."},
			"taints":   optionalStrings("Node taints as `key=value:Effect` or `key:Effect`."),
			"snippets": optionalStrings("Butane configs merged into every " + role + "'s Ignition config."),
		},
	}
}

func programAttribute(name, defaults string) schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Optional:            true,
		MarkdownDescription: "How " + name + " reaches each machine. " + defaults,
		Attributes: map[string]schema.Attribute{
			"delivery": optionalString("`download` (default), `container` or `sysext`."),
			"version":  optionalString("The release to run."),
			"url":      optionalString("Overrides the download or sysext location; `{version}` and `{arch}` are replaced."),
			"sha512":   optionalString("Pins the downloaded file (128 hex digits). Required for `sysext`."),
			"image":    optionalString("The container image for `container` delivery, pinned by digest (`name@sha256:...`)."),
		},
	}
}

// machinesAttribute is controllers or workers in schema version 1: a map keyed by machine name, so
// adding, removing or renaming one machine leaves every other entry of state and plan untouched.
func machinesAttribute(role string, required bool) schema.MapNestedAttribute {
	return schema.MapNestedAttribute{
		Required:            required,
		Optional:            !required,
		MarkdownDescription: "The " + role + "s, keyed by machine name (the node name and hostname).",
		NestedObject:        schema.NestedAttributeObject{Attributes: machineAttributes()},
	}
}

func clusterSchema() schema.Schema {
	return schema.Schema{
		Version: clusterSchemaVersion,
		MarkdownDescription: "Renders a Kubernetes cluster for Flatcar Container Linux or Fedora CoreOS: its PKI, kubeconfigs, " +
			"manifests and one Ignition config per machine.\n\n" +
			"The arguments mirror the `liftoff` CLI's spec and are checked by the same code, with the same messages. " +
			"Key material is generated on the first apply and kept in state; later plans render with it, so a plan " +
			"shows exactly which machines' configs change and nothing is regenerated. A plan warns when a certificate " +
			"enters the renewal window (`renew_before`), and the apply renews it with the same CA.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster's name at creation.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true, MarkdownDescription: "The cluster's name (a DNS label)."},
			"kubernetes_version": optionalString("The Kubernetes release, like `" + versions.Kubernetes + "` (the default). " +
				"liftoff renders v1.33 to v1.37."),
			"os":            optionalString("`flatcar` (default) or `fcos`."),
			"control_plane": optionalString("`static` (default: static pods on every controller) or `self-hosted`."),
			"api_server":    schema.StringAttribute{Required: true, MarkdownDescription: "The API server's URL, `https://HOST:PORT`."},
			"pod_cidr":      optionalString("The pods' address range; each node gets a /24. Default `" + spec.DefaultPodCIDR + "`."),
			"service_cidr":  optionalString("The services' address range. Default `" + spec.DefaultServiceCIDR + "`."),
			"host_cidrs": optionalStrings("Ranges the machines' addresses must be in; none means any address outside " +
				"the pod and service ranges."),
			"cluster_domain":      optionalString("The cluster's DNS domain. Default `" + spec.DefaultClusterDomain + "`."),
			"networking":          optionalString("`flannel` (default) or `none` to bring your own CNI."),
			"ssh_authorized_keys": optionalStrings("OpenSSH public keys for the `core` user on every machine."),
			"allow_even_controllers": schema.BoolAttribute{Optional: true,
				MarkdownDescription: "Permit an even number of controllers, which tolerates no more failures than one fewer would."},
			"arch": optionalString("The machines' CPU architecture: `amd64` (default) or `arm64`."),
			"renew_before": optionalString("The renewal window, like `720h` or `30d` (default `" + spec.DefaultRenewBefore + "`). " +
				"A plan warns about every certificate that expires within it, and the apply re-issues those leaf " +
				"certificates with the same CA. CAs are never replaced: see the CA rotation guide."),
			"rotate_bootstrap_tokens": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Replaces the bootstrap token of a worker pool or machine, by name, whenever its value changes " +
					"(any string: a date, a counter), as `liftoff token rotate` does. Only that pool's or machine's Ignition " +
					"config changes; machines that have joined keep their client certificates. `liftoff_bootstrap` then " +
					"deletes the old token from the cluster."},
			"pki": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Key and certificate settings.",
				Attributes: map[string]schema.Attribute{
					"key_algorithm": optionalString("`ecdsa-p256` (default), `ecdsa-p384`, `rsa-2048`, `rsa-3072` or `rsa-4096`. " +
						"Changing it re-keys leaf certificates; a CA keeps its key."),
					"ca_validity":   optionalString("How long a new CA is valid, like `87600h` or `3650d` (default 10 years)."),
					"cert_validity": optionalString("How long a leaf certificate is valid (default `" + spec.DefaultCertValidity + "`)."),
					"extra_sans":    optionalStrings("DNS names or IPs added to the API server's serving certificate."),
					"bootstrap_token_ttl": optionalString("How long the bootstrap token of a machine known one by one (a controller or `worker` " +
						"block) may be used to join, from the render that created it (default `" + spec.DefaultBootstrapTokenTTL + "`). " +
						"A worker pool's token does not expire; `rotate_bootstrap_tokens` replaces it."),
				},
			},
			"images": schema.SingleNestedAttribute{
				Optional:            true,
				MarkdownDescription: "Container images of the cluster's components; each defaults to the upstream image of the release. A digest (`@sha256:...`) pins an image.",
				Attributes: map[string]schema.Attribute{
					"kube_apiserver":          optionalString("kube-apiserver."),
					"kube_controller_manager": optionalString("kube-controller-manager."),
					"kube_scheduler":          optionalString("kube-scheduler."),
					"kube_proxy":              optionalString("kube-proxy."),
					"coredns":                 optionalString("CoreDNS."),
					"flannel":                 optionalString("flannel."),
					"flannel_cni_plugin":      optionalString("flannel's CNI plugin."),
					"pause":                   optionalString("The pod sandbox image."),
					"liftoff":                 optionalString("liftoff's own image (checkpointer, bootstrap helpers)."),
				},
			},
			"kubelet": programAttribute("the kubelet", "By default the release binary is downloaded at first boot and checked against its published sha512."),
			"etcd": programAttribute("etcd", "By default the release archive of liftoff's pinned etcd ("+versions.Etcd+
				") is downloaded at first boot and checked against its published SHA256SUMS."),
			"cni_plugins": programAttribute("the CNI plugins (bridge, portmap, loopback, ...)", "Neither OS ships them; "+
				"only `download` delivery applies, by default of liftoff's pinned release checked against its published sha512."),
			"etcd_snapshots": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "Snapshots each controller takes of its own etcd member with the installed release's etcdctl, " +
					"on by default: every `" + spec.DefaultEtcdSnapshotInterval + "`, keeping the newest " + strconv.Itoa(spec.DefaultEtcdSnapshotKeep) + ". " +
					"They are `" + generator.HostEtcdSnapshotDir + "/CLUSTER-MEMBER-TIMESTAMP.db` (UTC, mode 0600), each with a `.sha256` beside it, " +
					"taken by `liftoff-etcd-snapshot.timer`. The bootstrap machine takes none.",
				Attributes: map[string]schema.Attribute{
					"enabled":  schema.BoolAttribute{Optional: true, MarkdownDescription: "`false` takes no snapshots (default `true`)."},
					"interval": optionalString("The time between snapshots, like `30m`, `1h` (the default) or `1d`; at least `5m`."),
					"keep": schema.Int64Attribute{Optional: true, MarkdownDescription: "How many snapshots each controller keeps, the newest; " +
						"older ones are deleted once a new one is taken (default " + strconv.Itoa(spec.DefaultEtcdSnapshotKeep) + ")."},
				},
			},
			"machine_secrets": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "How machines get their private keys and credentials. By default they are in each machine's Ignition " +
					"config. With `server`, no config holds any: at first boot each machine fetches its own over HTTPS from " +
					"`liftoff_bootstrap` (or `liftoff serve-secrets`) at that address, which serves a machine only its own and " +
					"only to its address, and the machine checks the server against the cluster CA. Use it wherever configs are " +
					"served to whoever asks, as matchbox does. Worker pools keep their bootstrap token in their config.",
				Attributes: map[string]schema.Attribute{
					"server": optionalString("`HOST:PORT` where `liftoff_bootstrap` serves the secrets and the machines reach it."),
					"in_ignition": schema.BoolAttribute{Optional: true,
						MarkdownDescription: "Keep the secrets in the Ignition configs on a platform that would otherwise require `server`."},
				},
			},
			"etcd_restore": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "A snapshot of the cluster's etcd (`liftoff etcd snapshot`'s, or one a controller took) for the " +
					"controllers to restore, as `liftoff etcd restore` does, when the cluster is recovered on new machines: with the PKI " +
					"kept in state, replacing every controller brings the cluster back with the snapshot's data and the same CA. " +
					"`liftoff-etcd-restore.service` runs before etcd on a controller whose etcd data directory holds no member, downloads " +
					"the snapshot, restores it only if it matches `sha256`, and removes the download; it does not restore a member the " +
					"running members have started or added (a replacement, which joins them instead). Remove it once the cluster is back. " +
					"Workers and the bootstrap machine are unaffected.",
				Attributes: map[string]schema.Attribute{
					"url": schema.StringAttribute{Required: true, MarkdownDescription: "The snapshot's `https` URL."},
					"sha256": schema.StringAttribute{Required: true,
						MarkdownDescription: "The snapshot's SHA-256: 64 lowercase hex digits, as its `.sha256` file holds them."},
				},
			},
			"worker_pools": schema.MapNestedAttribute{
				Optional: true,
				MarkdownDescription: "Groups of identical workers that are not known one by one (autoscaling groups), keyed by " +
					"pool name. A pool has one Ignition config, in `worker_pool_ignition`; each of its machines takes its " +
					"name and address at boot.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"size":     schema.Int64Attribute{Optional: true, MarkdownDescription: "How many machines the pool usually runs."},
					"max_size": schema.Int64Attribute{Optional: true, MarkdownDescription: "The most machines it may grow to (default `size`); the pod CIDR must have room for them."},
					"labels":   schema.MapAttribute{Optional: true, ElementType: types.StringType, MarkdownDescription: "Node labels, added to `worker_defaults`."},
					"taints":   optionalStrings("Node taints, added to `worker_defaults`."),
					"snippets": optionalStrings("Butane configs merged into the pool's Ignition config."),
				}},
			},
			"platform":            platformAttribute(),
			"controller_defaults": roleDefaultsAttribute("controller"),
			"worker_defaults":     roleDefaultsAttribute("worker"),
			"controllers":         machinesAttribute("controller", true),
			"workers":             machinesAttribute("worker", false),
			"bootstrap": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "A separate machine for the pivot of a self-hosted cluster (`control_plane = \"self-hosted\"`; " +
					"not on the `aws` platform): it runs the bootstrap control plane and a temporary etcd member, which the " +
					"controllers' members take the data over from. Without it the first controller runs the bootstrap control " +
					"plane. Its Ignition config is in `ignition` under its name, like a controller's. Make `liftoff_bootstrap` " +
					"depend on the machine's resource, so that the pivot starts once the machine is up, and destroy the machine " +
					"in a later apply, once `liftoff_bootstrap`'s `status` is `complete`. Keep this argument then: the " +
					"controllers' configs name the machine.",
				Attributes: bootstrapAttributes(),
			},
			"output_dir": optionalString("A directory to write the render to, as `liftoff render --out` would: every file " +
				"plus `index.json`, replaced atomically on each apply and removed on destroy. Relative paths are relative " +
				"to the directory Terraform runs in; use `path.module` to be explicit."),

			"ignition": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "Each machine's Ignition config (JSON), the `bootstrap` machine's too, keyed by machine name. " +
					"Sensitive: the configs of controllers and the bootstrap machine hold private keys and every config holds the " +
					"bootstrap token."},
			"ignition_sha256": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Each machine's Ignition config's SHA-256 (hex), keyed by machine name. Not sensitive, " +
					"so a plan shows which machines' configs change; a platform can replace a machine when its entry changes."},
			"worker_pool_ignition": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "Each worker pool's Ignition config (JSON), keyed by pool name."},
			"worker_pool_ignition_sha256": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Each worker pool's Ignition config's SHA-256 (hex), keyed by pool name."},
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
					"machine, role and SHA-256, as JSON. `jsondecode(...).assets` lists them."},
			"platform_assets": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "The files of the `platform` (matchbox groups and profiles, EC2 user data, a " +
					"Vagrantfile, libvirt domains), keyed by path: every file of a kind the generator itself does not render. A platform file that " +
					"is byte for byte a machine's Ignition config is not repeated here: `asset_index` lists it with its machine, " +
					"and `ignition` holds it. Empty without a platform."},
			"key_material": schema.MapAttribute{Computed: true, Sensitive: true, ElementType: types.StringType,
				MarkdownDescription: "The cluster's keys, certificates and bootstrap token, keyed by path under `pki/`. " +
					"Generated on the first apply and reused by every later one."},
		},
	}
}
