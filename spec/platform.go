package spec

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Platform kinds: the label of a spec's platform block.
const (
	PlatformMatchbox = "matchbox"
	PlatformAWS      = "aws"
	PlatformVagrant  = "vagrant"
)

// Platform selects where the cluster runs and holds that platform's settings: exactly one of the
// typed blocks, the one named by Kind, is set. The HCL reader decodes the block's body into it; the
// Terraform provider sets it directly.
type Platform struct {
	Kind string   `hcl:"kind,label"`
	Body hcl.Body `hcl:",remain"`

	Matchbox *MatchboxPlatform
	AWS      *AWSPlatform
	Vagrant  *VagrantPlatform
}

// MatchboxPlatform is bare metal booted over the network by matchbox: `platform "matchbox" {}`.
type MatchboxPlatform struct {
	// HTTPEndpoint is where machines reach matchbox, like http://matchbox.example.com:8080.
	HTTPEndpoint string `hcl:"matchbox_http_endpoint"`
	// OSChannel is the release channel: stable (default), beta, alpha or lts for Flatcar; stable
	// (default), testing or next for Fedora CoreOS.
	OSChannel string `hcl:"os_channel,optional"`
	// OSVersion is the release to PXE-boot and install, like 4230.2.3 (Flatcar; "current" follows
	// the channel) or 42.20250901.3.0 (Fedora CoreOS).
	OSVersion string `hcl:"os_version"`
	// CachedAssets serves kernels, initramfs and install images from matchbox's /assets/ instead of
	// the OS's release servers.
	CachedAssets bool `hcl:"cached_assets,optional"`
	// InstallDisk is the disk the OS is installed to (default /dev/sda); a machine's install_disk
	// overrides it.
	InstallDisk string `hcl:"install_disk,optional"`
	// KernelArgs are added to the PXE kernel command line, like "console=ttyS0,115200n8".
	KernelArgs []string `hcl:"kernel_args,optional"`
}

// AWSPlatform is EC2 with launch templates and user data pointing at configs in S3: `platform "aws" {}`.
type AWSPlatform struct {
	Region string `hcl:"region"`
	// Bucket holds the full Ignition configs; user data points at them.
	Bucket string `hcl:"bucket"`
	// Prefix is the key prefix of the configs in the bucket; defaults to the cluster name.
	Prefix string `hcl:"prefix,optional"`
	// ConfigBaseURL, when set, is an https:// URL that serves the bucket's objects (a VPC endpoint
	// or a proxy) and replaces s3://BUCKET in user data.
	ConfigBaseURL string `hcl:"config_base_url,optional"`
	// AMI is the image the launch templates boot; optional, the Terraform configuration may look it up.
	AMI                    string `hcl:"ami,optional"`
	ControllerInstanceType string `hcl:"controller_instance_type,optional"`
	WorkerInstanceType     string `hcl:"worker_instance_type,optional"`
	// WorkerPoolInstanceTypes sets the instance type of a worker pool's machines by pool name, like
	// { general = "m6i.large" }; a pool not named here runs WorkerInstanceType.
	WorkerPoolInstanceTypes map[string]string `hcl:"worker_pool_instance_types,optional"`
	// EtcdVolumeIDs maps each controller to the EBS volume holding its etcd data (vol-...).
	EtcdVolumeIDs map[string]string `hcl:"etcd_volume_ids,optional"`
	// EtcdVolumeDevice is the device path of the etcd volume when volume IDs are not known when
	// rendering, like /dev/xvdf (a name the OS's udev rules link to the NVMe device).
	EtcdVolumeDevice string `hcl:"etcd_volume_device,optional"`
	// EtcdVolumeSize is the size of each controller's etcd volume in GiB (default 20).
	EtcdVolumeSize int `hcl:"etcd_volume_size,optional"`
}

// VagrantPlatform is local virtual machines: `platform "vagrant" {}`.
type VagrantPlatform struct {
	// Box is the Vagrant box every machine boots; it must be one of the cluster's OS.
	Box        string `hcl:"box,optional"`
	BoxURL     string `hcl:"box_url,optional"`
	BoxVersion string `hcl:"box_version,optional"`
	// CPUs and memory (MiB) per role.
	ControllerCPUs   int `hcl:"controller_cpus,optional"`
	ControllerMemory int `hcl:"controller_memory,optional"`
	WorkerCPUs       int `hcl:"worker_cpus,optional"`
	WorkerMemory     int `hcl:"worker_memory,optional"`
}

// decode fills the typed block named by the platform's label from its HCL body. It is a no-op for a
// spec without a platform block.
func (p *Platform) decode(ctx *hcl.EvalContext) hcl.Diagnostics {
	if p == nil || p.Body == nil {
		return nil
	}
	var target any
	switch p.Kind {
	case PlatformMatchbox:
		p.Matchbox = &MatchboxPlatform{}
		target = p.Matchbox
	case PlatformAWS:
		p.AWS = &AWSPlatform{}
		target = p.AWS
	case PlatformVagrant:
		p.Vagrant = &VagrantPlatform{}
		target = p.Vagrant
	default:
		r := p.Body.MissingItemRange()
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Unknown platform",
			Detail:   fmt.Sprintf("platform %q is not one of %s.", p.Kind, strings.Join(quoteAll(PlatformKinds()), ", ")),
			Subject:  &r,
		}}
	}
	return gohcl.DecodeBody(p.Body, ctx, target)
}

// PlatformKinds lists the platform kinds a spec may name.
func PlatformKinds() []string {
	return []string{PlatformAWS, PlatformMatchbox, PlatformVagrant}
}

// PlatformValidator checks a completed spec (after defaults) for what one platform needs: its own
// settings and what it asks of the rest of the spec (a MAC on every bare-metal machine). Problems
// name fields like "platform.matchbox.install_disk" or "controller.node1.mac".
type PlatformValidator func(*Cluster) Problems

var platformValidators = struct {
	sync.RWMutex
	m map[string]PlatformValidator
}{m: map[string]PlatformValidator{}}

// RegisterPlatform makes Validate run validate for specs whose platform is kind. Platform adapters
// register themselves when their package is initialised; a program that reads specs imports them
// all (platforms/all) so that every caller of Complete checks the same things.
func RegisterPlatform(kind string, validate PlatformValidator) {
	platformValidators.Lock()
	defer platformValidators.Unlock()
	if _, dup := platformValidators.m[kind]; dup {
		panic("spec: platform " + kind + " registered twice")
	}
	platformValidators.m[kind] = validate
}

// PlatformField is the field path of a platform setting, as Problems and Ranges use it.
func PlatformField(kind, setting string) string { return "platform." + kind + "." + setting }

// platformProblems checks the platform block's shape and runs its platform's validator.
func platformProblems(c *Cluster) Problems {
	p := c.Platform
	if p == nil {
		return nil
	}
	field := "platform." + p.Kind
	set := map[string]bool{PlatformMatchbox: p.Matchbox != nil, PlatformAWS: p.AWS != nil, PlatformVagrant: p.Vagrant != nil}
	known, ok := set[p.Kind]
	switch {
	case !ok:
		return Problems{{Field: field, Summary: "Unknown platform", Detail: fmt.Sprintf("%q is not one of %s", p.Kind, strings.Join(quoteAll(PlatformKinds()), ", "))}}
	case !known:
		return Problems{{Field: field, Summary: "Missing platform settings", Detail: fmt.Sprintf("the platform is %q but its settings block is not set", p.Kind)}}
	}
	var others []string
	for k, isSet := range set {
		if isSet && k != p.Kind {
			others = append(others, k)
		}
	}
	if len(others) > 0 {
		sort.Strings(others)
		return Problems{{Field: field, Summary: "Settings of another platform", Detail: fmt.Sprintf("the platform is %q but settings for %s are set too", p.Kind, strings.Join(others, ", "))}}
	}
	platformValidators.RLock()
	validate, ok := platformValidators.m[p.Kind]
	platformValidators.RUnlock()
	if !ok {
		return Problems{{Field: field, Summary: "Platform not built in", Detail: fmt.Sprintf("this program cannot check or render platform %q: it must import github.com/liftoff-k8s/liftoff/platforms/all", p.Kind)}}
	}
	return validate(c)
}
