package aws

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Defaults of the platform block.
const (
	DefaultEtcdVolumeSize = 20 // GiB
	defaultInstanceAMD64  = "m6i.large"
	defaultInstanceARM64  = "m7g.large"
)

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$`)
	amiRE    = regexp.MustCompile(`^ami-([0-9a-f]{8}|[0-9a-f]{17})$`)
	volumeRE = regexp.MustCompile(`^vol-([0-9a-f]{8}|[0-9a-f]{17})$`)
	// instanceTypeRE is FAMILY.SIZE: a family with a generation digit (m6i, c7gn, u-6tb1) and a size.
	instanceTypeRE = regexp.MustCompile(`^([a-z][a-z0-9-]*?)(\d+)([a-z0-9-]*)\.(nano|micro|small|medium|large|xlarge|\d+xlarge|metal(-\d+xl)?)$`)
	bucketRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	prefixRE       = regexp.MustCompile(`^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$`)
	deviceRE       = regexp.MustCompile(`^/dev/[A-Za-z0-9._:+/-]+$`)
)

// settings are the platform block with defaults applied.
type settings struct {
	*Settings
	prefix string
	base   string // where user data points: s3://BUCKET/PREFIX or CONFIG_BASE_URL/PREFIX
	size   int
	types  map[string]string // role -> instance type
}

// Settings are the platform block, `platform "aws" {}`: EC2 with launch templates and user data
// pointing at the configs in S3.
type Settings struct {
	Region                  string            `hcl:"region"`
	Bucket                  string            `hcl:"bucket"`
	Prefix                  string            `hcl:"prefix,optional"`
	ConfigBaseURL           string            `hcl:"config_base_url,optional"`
	AMI                     string            `hcl:"ami,optional"`
	ControllerInstanceType  string            `hcl:"controller_instance_type,optional"`
	WorkerInstanceType      string            `hcl:"worker_instance_type,optional"`
	WorkerPoolInstanceTypes map[string]string `hcl:"worker_pool_instance_types,optional"`
	EtcdVolumeIDs           map[string]string `hcl:"etcd_volume_ids,optional"`
	EtcdVolumeDevice        string            `hcl:"etcd_volume_device,optional"`
	EtcdVolumeSize          int               `hcl:"etcd_volume_size,optional"`
}

// Docs describes each setting, in Markdown.
func (Settings) Docs() map[string]string {
	return map[string]string{
		"region":                     "The AWS region.",
		"bucket":                     "The S3 bucket that holds the full Ignition configs.",
		"prefix":                     "The key prefix of the configs in the bucket (default: the cluster name).",
		"config_base_url":            "An `https://` URL that serves the bucket's objects (a VPC endpoint or a proxy), used in user data instead of `s3://BUCKET`.",
		"ami":                        "The image the launch templates boot; the Terraform configuration may look it up instead.",
		"controller_instance_type":   "The controllers' instance type.",
		"worker_instance_type":       "The workers' instance type.",
		"worker_pool_instance_types": "A worker pool's instance type by pool name; other pools run `worker_instance_type`.",
		"etcd_volume_ids":            "The EBS volume (`vol-...`) holding each controller's etcd data, by controller name.",
		"etcd_volume_device":         "The etcd volume's device path when volume IDs are not known when rendering, like `/dev/xvdf`.",
		"etcd_volume_size":           "The size of each controller's etcd volume in GiB (default 20).",
	}
}

func settingsOf(c *spec.Cluster) settings {
	p := c.Platform.Settings.(*Settings)
	s := settings{Settings: p, prefix: strings.Trim(p.Prefix, "/"), size: p.EtcdVolumeSize}
	if s.prefix == "" {
		s.prefix = c.Name
	}
	if s.size == 0 {
		s.size = DefaultEtcdVolumeSize
	}
	def := defaultInstanceAMD64
	if c.Arch == "arm64" {
		def = defaultInstanceARM64
	}
	s.types = map[string]string{spec.RoleController: p.ControllerInstanceType, spec.RoleWorker: p.WorkerInstanceType}
	for role, t := range s.types {
		if t == "" {
			s.types[role] = def
		}
	}
	s.base = "s3://" + p.Bucket + "/" + s.prefix
	if p.ConfigBaseURL != "" {
		s.base = strings.TrimSuffix(p.ConfigBaseURL, "/") + "/" + s.prefix
	}
	return s
}

// objectKey is the key in the bucket of a config at rel, like node1.ign or pools/general.ign.
func (s settings) objectKey(rel string) string { return s.prefix + "/" + rel }

// fromS3 says whether machines fetch their objects from the bucket with their instance's role, rather
// than from config_base_url.
func (s settings) fromS3() bool { return s.ConfigBaseURL == "" }

// poolType is the instance type of a worker pool's machines.
func (s settings) poolType(pool string) string {
	if t := s.WorkerPoolInstanceTypes[pool]; t != "" {
		return t
	}
	return s.types[spec.RoleWorker]
}

// etcdDevice is where a controller's etcd volume appears: on Nitro instances an EBS volume is an
// NVMe device whose by-id name carries the volume ID without its dash.
func (s settings) etcdDevice(controller string) string {
	if id := s.EtcdVolumeIDs[controller]; id != "" {
		return "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_" + strings.ReplaceAll(id, "-", "")
	}
	return s.EtcdVolumeDevice
}

func field(setting string) spec.Path { return spec.PlatformField(spec.PlatformAWS, setting) }

// Validate checks the AWS settings: names AWS would refuse, instance types of the wrong format or
// architecture or for a worker pool the spec does not have, and an etcd volume for every controller.
func (Adapter) Validate(c *spec.Cluster) spec.Problems {
	var ps spec.Problems
	add := func(field spec.Path, summary, detail string, args ...any) {
		ps = append(ps, spec.Problem{Path: field, Summary: summary, Detail: fmt.Sprintf(detail, args...)})
	}
	s := settingsOf(c)

	if c.Bootstrap != nil {
		add(spec.MachinePath(*c.Bootstrap), "Bootstrap machine not supported on AWS",
			"the aws platform has no instance for a bootstrap machine yet; remove the bootstrap block, and the first controller runs the bootstrap control plane")
	}
	if !regionRE.MatchString(s.Region) {
		add(field("region"), "Invalid AWS region", "%q is not a region name like eu-central-1", s.Region)
	}
	if why := bucketProblem(s.Bucket); why != "" {
		add(field("bucket"), "Invalid S3 bucket name", "%q: %s", s.Bucket, why)
	}
	if s.Prefix != "" && !prefixRE.MatchString(strings.Trim(s.Prefix, "/")) {
		add(field("prefix"), "Invalid key prefix", "%q must be S3 key segments of letters, digits and !_.*'()- separated by single slashes", s.Prefix)
	}
	if s.ConfigBaseURL != "" {
		if u, err := url.Parse(s.ConfigBaseURL); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			add(field("config_base_url"), "Invalid config URL", "%q must be an https:// URL without query, which serves the bucket's objects", s.ConfigBaseURL)
		}
	}
	if s.AMI != "" && !amiRE.MatchString(s.AMI) {
		add(field("ami"), "Invalid AMI ID", "%q is not an image ID like ami-0123456789abcdef0", s.AMI)
	}
	instanceType := func(f spec.Path, t string) {
		m := instanceTypeRE.FindStringSubmatch(t)
		if m == nil {
			add(f, "Invalid instance type", "%q is not an EC2 instance type like m6i.large (FAMILY.SIZE)", t)
			return
		}
		if graviton := m[1] == "a" && m[2] == "1" || strings.Contains(m[3], "g"); graviton != (c.Arch == "arm64") {
			want := "an x86_64 type such as m6i.large"
			if c.Arch == "arm64" {
				want = "a Graviton type such as m7g.large"
			}
			add(f, "Instance type of another architecture", "%q does not run %s machines; use %s", t, c.Arch, want)
		}
	}
	instanceType(field("controller_instance_type"), s.types[spec.RoleController])
	instanceType(field("worker_instance_type"), s.types[spec.RoleWorker])
	pools := map[string]bool{}
	for _, p := range c.WorkerPools {
		pools[p.Name] = true
	}
	for _, name := range sortedKeys(s.WorkerPoolInstanceTypes) {
		f := field("worker_pool_instance_types").Key(name)
		if !pools[name] {
			add(f, "Instance type for an unknown worker pool", "%q is not a worker_pool of the spec", name)
			continue
		}
		instanceType(f, s.WorkerPoolInstanceTypes[name])
	}

	switch {
	case len(s.EtcdVolumeIDs) > 0 && s.EtcdVolumeDevice != "":
		add(field("etcd_volume_device"), "Two ways to find the etcd volume", "set etcd_volume_ids or etcd_volume_device, not both")
	case len(s.EtcdVolumeIDs) == 0 && s.EtcdVolumeDevice == "":
		add(field("etcd_volume_ids"), "Missing etcd volumes",
			"controllers keep etcd's data on an EBS volume: set etcd_volume_ids = { %s = \"vol-...\" } for every controller, or etcd_volume_device", c.Controllers[0].Name)
	case s.EtcdVolumeDevice != "" && !deviceRE.MatchString(s.EtcdVolumeDevice):
		add(field("etcd_volume_device"), "Invalid device", "%q must be a device path like /dev/xvdf", s.EtcdVolumeDevice)
	case len(s.EtcdVolumeIDs) > 0:
		controllers := map[string]bool{}
		seen := map[string]string{}
		for _, n := range c.Controllers {
			controllers[n.Name] = true
			if s.EtcdVolumeIDs[n.Name] == "" {
				add(field("etcd_volume_ids"), "Missing etcd volume", "controller %s has no volume in etcd_volume_ids", n.Name)
			}
		}
		for _, name := range sortedKeys(s.EtcdVolumeIDs) {
			id, f := s.EtcdVolumeIDs[name], field("etcd_volume_ids").Key(name)
			switch {
			case !controllers[name]:
				add(f, "Volume for an unknown controller", "%q is not a controller of the spec", name)
			case !volumeRE.MatchString(id):
				add(f, "Invalid EBS volume ID", "%q is not a volume ID like vol-0123456789abcdef0", id)
			case seen[id] != "":
				add(f, "Volume shared by two controllers", "%s is also the volume of %s", id, seen[id])
			default:
				seen[id] = name
			}
		}
	}
	if s.size < 1 || s.size > 16384 {
		add(field("etcd_volume_size"), "Invalid volume size", "%d GiB: an EBS volume holds 1 to 16384 GiB", s.size)
	}
	return ps
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bucketProblem says why AWS would refuse a general purpose bucket name, or returns "".
func bucketProblem(b string) string {
	switch {
	case len(b) < 3 || len(b) > 63:
		return "a bucket name has 3 to 63 characters"
	case !bucketRE.MatchString(b):
		return "a bucket name has only lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit"
	case strings.Contains(b, ".."):
		return "a bucket name has no two adjacent dots"
	case net.ParseIP(b) != nil:
		return "a bucket name is not an IP address"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return "a bucket name does not start with " + p
		}
	}
	for _, suffix := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, suffix) {
			return "a bucket name does not end with " + suffix
		}
	}
	return ""
}
