// Package spec defines a liftoff cluster spec, reads it from HCL and validates it.
//
// The same Cluster value is built by the CLI (from an HCL file) and by the Terraform provider (from
// resource arguments); both call Validate, so both accept and reject the same things with the same
// messages. Each Problem names the field it is about; Ranges maps fields to where the user wrote them.
package spec

import (
	"strings"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	"github.com/hashicorp/hcl/v2"
)

// Roles a machine can have.
const (
	RoleController = "controller"
	RoleWorker     = "worker"
	// RoleBootstrap is a self-hosted cluster's temporary machine: it runs the bootstrap control plane
	// and a temporary etcd member until the pivot has moved both onto the controllers.
	RoleBootstrap = "bootstrap"
)

// Operating systems liftoff renders for.
const (
	OSFlatcar = "flatcar"
	OSFCOS    = "fcos"
)

// Control-plane modes.
const (
	ControlPlaneStatic     = "static"
	ControlPlaneSelfHosted = "self-hosted"
)

// Ways a host program (kubelet, etcd) reaches a machine.
const (
	// DeliveryDownload fetches a release binary or archive at first boot and checks it against a
	// pinned sha512, or, when none is pinned, against the checksum file published beside it.
	DeliveryDownload = "download"
	// DeliveryContainer runs the program from a container image pinned by digest, with the OS's
	// container engine (docker on Flatcar, podman on Fedora CoreOS).
	DeliveryContainer = "container"
	// DeliverySysext installs a systemd-sysext image that Ignition fetches and checks against a pinned sha512.
	DeliverySysext = "sysext"
)

// Cluster is one cluster spec.
type Cluster struct {
	Name              string   `hcl:"name,label"`
	KubernetesVersion string   `hcl:"kubernetes_version,optional"`
	OS                string   `hcl:"os,optional"`
	ControlPlane      string   `hcl:"control_plane,optional"`
	APIServer         string   `hcl:"api_server"`
	PodCIDR           string   `hcl:"pod_cidr,optional"`
	ServiceCIDR       string   `hcl:"service_cidr,optional"`
	HostCIDRs         []string `hcl:"host_cidrs,optional"`
	ClusterDomain     string   `hcl:"cluster_domain,optional"`
	Networking        string   `hcl:"networking,optional"`
	SSHAuthorizedKeys []string `hcl:"ssh_authorized_keys,optional"`
	// AllowEvenControllers permits an even number of controllers, which tolerates no more failures
	// than one fewer would.
	AllowEvenControllers bool `hcl:"allow_even_controllers,optional"`
	// Arch is the machines' CPU architecture: amd64 or arm64.
	Arch string `hcl:"arch,optional"`

	PKI     *PKI     `hcl:"pki,block"`
	Images  *Images  `hcl:"images,block"`
	Kubelet *Program `hcl:"kubelet,block"`
	Etcd    *Program `hcl:"etcd,block"`
	// CNIPlugins are the standard CNI plugins (bridge, portmap, loopback, ...) the pod network
	// calls; neither OS ships them. Only download delivery applies.
	CNIPlugins *Program `hcl:"cni_plugins,block"`
	// EtcdSnapshots are the snapshots every controller takes of its etcd member.
	EtcdSnapshots *EtcdSnapshots `hcl:"etcd_snapshots,block"`
	// EtcdRestore, when set, is a snapshot every controller without etcd data restores its member
	// from before etcd first starts: a cluster rebuilt from a snapshot with the PKI it had.
	EtcdRestore *EtcdRestore `hcl:"etcd_restore,block"`
	// MachineSecrets says how machines get their private keys and credentials.
	MachineSecrets *MachineSecrets `hcl:"machine_secrets,block"`
	// RoleConfigURL, when set, is where machines fetch their role's shared Ignition config, with
	// RoleConfigURLRole standing for the role: each machine's config then holds only its own files.
	RoleConfigURL string `hcl:"role_config_url,optional"`

	// ControllerDefaults and WorkerDefaults apply to every machine of the role.
	ControllerDefaults *RoleDefaults `hcl:"controllers,block"`
	WorkerDefaults     *RoleDefaults `hcl:"workers,block"`

	// Bootstrap, when set, is a separate machine for the pivot of a self-hosted cluster: it runs the
	// bootstrap control plane and a temporary etcd member, which the controllers' members join and
	// take the data over from. After the pivot it can be destroyed.
	Bootstrap   *Node  `hcl:"bootstrap,block"`
	Controllers []Node `hcl:"controller,block"`
	Workers     []Node `hcl:"worker,block"`
	// WorkerPools are groups of identical workers not known one by one (autoscaling groups): a pool
	// has one Ignition config, and each of its machines takes its name and address at boot.
	WorkerPools []WorkerPool `hcl:"worker_pool,block"`

	Platform *Platform `hcl:"platform,block"`

	// Filename is the file the spec was read from ("" when built in code).
	Filename string
	// Ranges maps a field path (see Field) to where it was written.
	Ranges map[string]hcl.Range
	// Source is the spec's text when read from a file, so diagnostics can show it.
	Source []byte

	// snippets are the Butane snippets' Ignition configs, by source, as validation translated them.
	snippets map[string]igntypes.Config
}

// Snippet returns a Butane snippet of the spec as the Ignition config its validation translated it
// to, so that a render does not run Butane on it again. ok is false for text that validation did not
// translate.
func (c *Cluster) Snippet(src string) (cfg igntypes.Config, ok bool) {
	cfg, ok = c.snippets[src]
	return cfg, ok
}

// PKI settings.
type PKI struct {
	// KeyAlgorithm is ecdsa-p256 (default), ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.
	KeyAlgorithm string `hcl:"key_algorithm,optional"`
	// CAValidity and CertValidity are durations: Go syntax (8760h) or whole days (365d).
	CAValidity   string `hcl:"ca_validity,optional"`
	CertValidity string `hcl:"cert_validity,optional"`
	// RenewBefore is the renewal window: a certificate expiring within it is renewed on the next
	// render and reported by `liftoff certs`.
	RenewBefore string `hcl:"renew_before,optional"`
	// ExtraSANs are added to the apiserver's serving certificate (DNS names or IPs).
	ExtraSANs []string `hcl:"extra_sans,optional"`
	// BootstrapTokenTTL is how long the bootstrap token of a machine known one by one (a controller,
	// a worker block, the bootstrap machine) may be used to join, counted from when the render
	// creates it. A worker pool's token does not expire; `liftoff token rotate` replaces it.
	BootstrapTokenTTL string `hcl:"bootstrap_token_ttl,optional"`
}

// MachineSecrets says how a machine known one by one gets its private keys, client kubeconfigs, the
// Secrets encryption key and its bootstrap token. By default they are in its Ignition config, which
// suits platforms that hand each machine only its own config (AWS, Vagrant). With Server set, its
// Ignition config holds none of them: at first boot the machine fetches them over HTTPS from
// `liftoff bootstrap` (or `liftoff serve-secrets`), which serves each machine its own, only to the
// machine's own address, and the machine checks the server against the cluster CA.
type MachineSecrets struct {
	// Server is HOST:PORT where liftoff serves the secrets and machines reach it: the address of
	// the host that runs `liftoff bootstrap`.
	Server string `hcl:"server,optional"`
	// InIgnition keeps the secrets in the Ignition configs on a platform that would otherwise
	// require Server (matchbox, which serves configs to anyone who knows a machine's MAC).
	InIgnition bool `hcl:"in_ignition,optional"`
}

// RoleConfigURLRole stands for a role (controller, worker, bootstrap) in RoleConfigURL.
const RoleConfigURLRole = "{role}"

// RoleConfigAt is where a machine of role fetches its role's config, by RoleConfigURL.
func (c *Cluster) RoleConfigAt(role string) string {
	return strings.ReplaceAll(c.RoleConfigURL, RoleConfigURLRole, role)
}

// FetchesSecrets reports whether machines fetch their secrets from liftoff rather than carrying
// them in their Ignition configs.
func (c *Cluster) FetchesSecrets() bool {
	return c.MachineSecrets != nil && c.MachineSecrets.Server != ""
}

// Images are the container images of the cluster's components. A digest (@sha256:...) pins an image.
type Images struct {
	KubeAPIServer         string `hcl:"kube_apiserver,optional"`
	KubeControllerManager string `hcl:"kube_controller_manager,optional"`
	KubeScheduler         string `hcl:"kube_scheduler,optional"`
	KubeProxy             string `hcl:"kube_proxy,optional"`
	CoreDNS               string `hcl:"coredns,optional"`
	Flannel               string `hcl:"flannel,optional"`
	FlannelCNIPlugin      string `hcl:"flannel_cni_plugin,optional"`
	Pause                 string `hcl:"pause,optional"`
	// Liftoff is liftoff's own image (checkpointer, bootstrap helpers).
	Liftoff string `hcl:"liftoff,optional"`
}

// Program says how a host program (kubelet or etcd) reaches each machine.
type Program struct {
	// Delivery is download (default), container or sysext.
	Delivery string `hcl:"delivery,optional"`
	// Version of the program; defaults to the cluster's Kubernetes version for the kubelet and to
	// liftoff's pinned etcd release for etcd.
	Version string `hcl:"version,optional"`
	// URL overrides the download or sysext location; {version} and {arch} are replaced.
	URL string `hcl:"url,optional"`
	// SHA512 pins the downloaded file (hex). Required for sysext.
	SHA512 string `hcl:"sha512,optional"`
	// Image is the container image for container delivery; it must be pinned by digest.
	Image string `hcl:"image,optional"`
}

// EtcdSnapshots says how often each controller snapshots its own etcd member and how many of the
// snapshots it keeps. They are on unless turned off.
type EtcdSnapshots struct {
	// Enabled is true by default.
	Enabled *bool `hcl:"enabled,optional"`
	// Interval is the time between snapshots, at least MinEtcdSnapshotInterval.
	Interval string `hcl:"interval,optional"`
	// Keep is how many snapshots a controller keeps, the newest; older ones are deleted.
	Keep *int `hcl:"keep,optional"`
}

// EtcdRestore is a snapshot of the cluster's etcd (`liftoff etcd snapshot`'s, or a controller's own)
// that controllers restore as `liftoff etcd restore` does, to recover the cluster on new machines:
// each one only into an empty data directory, and only as one of the members forming the restored
// cluster, never as a replacement joining running members.
type EtcdRestore struct {
	// URL is where each controller downloads the snapshot from, over HTTPS.
	URL string `hcl:"url,optional"`
	// SHA256 is the snapshot's digest (64 lowercase hex digits, as its .sha256 file holds it); a
	// download that does not match is not restored.
	SHA256 string `hcl:"sha256,optional"`
}

// RoleDefaults apply to every machine of a role.
type RoleDefaults struct {
	Labels   map[string]string `hcl:"labels,optional"`
	Taints   []string          `hcl:"taints,optional"`
	Snippets []string          `hcl:"snippets,optional"`
}

// Node is one machine.
type Node struct {
	Name   string `hcl:"name,label"`
	IP     string `hcl:"ip"`
	MAC    string `hcl:"mac,optional"`
	Domain string `hcl:"domain,optional"`
	// Labels and Taints are added to the role's; Taints are key=value:Effect or key:Effect.
	Labels map[string]string `hcl:"labels,optional"`
	Taints []string          `hcl:"taints,optional"`
	// Snippets are Butane configs (same variant as the OS) merged into this machine's Ignition.
	Snippets []string `hcl:"snippets,optional"`
	// InstallDisk is the disk the OS is installed to on bare metal.
	InstallDisk string `hcl:"install_disk,optional"`

	// Role is set by the reader: controller or worker.
	Role string
}

// WorkerPool is a group of identical workers.
type WorkerPool struct {
	Name string `hcl:"name,label"`
	// Size is how many machines the pool usually runs; MaxSize is the most it may grow to (default
	// Size). Platforms size their groups from them; the pod CIDR must have room for MaxSize.
	Size    int `hcl:"size,optional"`
	MaxSize int `hcl:"max_size,optional"`
	// Labels, Taints and Snippets are added to the workers' role defaults, as for a worker block.
	Labels   map[string]string `hcl:"labels,optional"`
	Taints   []string          `hcl:"taints,optional"`
	Snippets []string          `hcl:"snippets,optional"`
}

// Machines returns the bootstrap machine (if any), then controllers, then workers.
func (c *Cluster) Machines() []Node {
	out := make([]Node, 0, len(c.Controllers)+len(c.Workers)+1)
	if c.Bootstrap != nil {
		out = append(out, *c.Bootstrap)
	}
	out = append(out, c.Controllers...)
	return append(out, c.Workers...)
}
