// Package aws renders a cluster for EC2. A machine's full Ignition config holds its TLS material and
// is far larger than the 16 KiB EC2 allows as user data, so each full config becomes an object to
// upload to S3, and the machine's launch-template user data is a pointer config that replaces itself
// with that object, verified by its sha512. The hash doubles as the config's fingerprint: when a
// config changes, so does its user data, and with it the launch template that boots the machine.
//
// A worker pool runs as an autoscaling group: its one config is uploaded and pointed at the same way,
// and its launch template carries the config's fingerprint, so a changed config rolls the group.
//
// Controllers keep etcd's data on an EBS volume that outlives the instance: their configs format the
// volume only when it is blank and mount it at etcd's data directory before etcd starts.
//
// A machine of the spec reads its object from S3 once, at first boot. When the objects come from S3
// with the instance's role, each machine's config seals its object after that read: it tags the
// object with BootedTag and the instance's ARN, and the roles of examples/aws read an object only from
// an instance other than the one its tag names. docs/security.md says who can read what.
package aws

import (
	"crypto/sha512"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sync"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/internal/versions"
	"github.com/liftoff-k8s/liftoff/platforms"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Asset kinds of the AWS platform.
const (
	// KindIgnitionObject is a full Ignition config to upload to the bucket.
	KindIgnitionObject generator.Kind = "aws-ignition-object"
	// KindUserData is a launch template's user data: a pointer config.
	KindUserData generator.Kind = "user-data"
	// KindPoolIgnitionObject and KindPoolUserData are a worker pool's full config and launch
	// template user data. They belong to no one machine, so they have kinds of their own.
	KindPoolIgnitionObject generator.Kind = "aws-pool-ignition-object"
	KindPoolUserData       generator.Kind = "aws-pool-user-data"
	// KindManifest lists every machine's and pool's object, user data and settings for Terraform.
	KindManifest generator.Kind = "aws-manifest"
)

// Paths in the output directory.
const (
	Dir          = "aws"
	ManifestPath = "aws/cluster.json"
)

// MaxUserData is EC2's limit on raw user data.
const MaxUserData = 16384

// BootedTag is the tag with which a machine seals its object in the bucket once booted: its value is
// the ARN of the instance that read the object.
const BootedTag = "liftoff.dev/booted-by"

// HostSealScript is where a machine keeps liftoff-seal-config.
const HostSealScript = "/opt/liftoff/bin/liftoff-seal-config"

// sealScript tags a machine's object with BootedTag once the machine has booted from it.
//
//go:embed liftoff-seal-config.sh
var sealScript string

// Adapter is the AWS platform.
type Adapter struct{}

func init() { platforms.Register(Adapter{}) }

// The platform adds to the machines' own configs.
var _ platforms.MachineConfigurer = Adapter{}

// Summary says what the platform is.
func (Adapter) Summary() string {
	return "EC2 with launch templates whose user data points at the full configs in S3."
}

// NewSettings returns empty Settings.
func (Adapter) NewSettings() any { return &Settings{} }

// Kind is "aws".
func (Adapter) Kind() string { return spec.PlatformAWS }

// Manifest is aws/cluster.json: what the Terraform configuration needs to create the machines and
// the worker pools' autoscaling groups.
type Manifest struct {
	Cluster     string             `json:"cluster"`
	Region      string             `json:"region"`
	Bucket      string             `json:"bucket"`
	AMI         string             `json:"ami,omitempty"`
	Controllers map[string]Machine `json:"controllers"`
	Workers     map[string]Machine `json:"workers"`
	WorkerPools map[string]Pool    `json:"worker_pools"`
	// BootedTag is the tag with which machines seal their objects; policies name it.
	BootedTag string `json:"booted_tag"`
}

// Config is where a machine's or pool's config is and how its user data finds it.
type Config struct {
	// UserData is the path of the pointer config (relative to the output directory).
	UserData string `json:"user_data"`
	// Object is the path of the full config and ObjectKey its key in the bucket.
	Object    string `json:"object"`
	ObjectKey string `json:"object_key"`
	// ConfigSHA512 is the full config's hash (hex), which the pointer config verifies: the config's
	// fingerprint.
	ConfigSHA512 string `json:"config_sha512"`
}

// Machine is one machine's entry in the manifest.
type Machine struct {
	IP           string `json:"ip"`
	InstanceType string `json:"instance_type"`
	Config
	EtcdVolume *EtcdVolume `json:"etcd_volume,omitempty"`
}

// Pool is one worker pool's entry in the manifest: its autoscaling group's sizes and launch template.
// The group keeps at least the pool's size running (MinSize and DesiredCapacity) and grows to its
// max_size at most.
type Pool struct {
	InstanceType    string `json:"instance_type"`
	MinSize         int    `json:"min_size"`
	DesiredCapacity int    `json:"desired_capacity"`
	MaxSize         int    `json:"max_size"`
	Config
}

// EtcdVolume is a controller's etcd data volume.
type EtcdVolume struct {
	ID     string `json:"id,omitempty"`
	Device string `json:"device"`
	Size   int    `json:"size"`
}

// MachineConfigs gives each controller its etcd data volume and, when machines fetch their configs
// from S3, each machine the seal that tags its object as read (liftoff-seal-config).
func (Adapter) MachineConfigs(c *spec.Cluster) (func(spec.Node) (*igntypes.Config, error), error) {
	s := settingsOf(c)
	header := platforms.ButaneHeader(c)
	var script igntypes.File
	if s.fromS3() {
		var err error
		if script, err = sealFile(); err != nil {
			return nil, err
		}
	}
	return func(n spec.Node) (*igntypes.Config, error) {
		cfg := igntypes.Config{Ignition: igntypes.Ignition{Version: versions.IgnitionSpec}}
		if n.Role == spec.RoleController {
			vol, err := butane.Translate([]byte(etcdVolumeSnippet(header, s.etcdDevice(n.Name))))
			if err != nil {
				return nil, fmt.Errorf("etcd volume of %s: %w", n.Name, err)
			}
			cfg = butane.Merge(cfg, vol)
		}
		if s.fromS3() {
			cfg.Storage.Files = append(cfg.Storage.Files, script)
			cfg.Systemd.Units = append(cfg.Systemd.Units, sealUnit(s.Bucket, s.objectKey(n.Name+".ign"), s.Region))
		}
		return &cfg, nil
	}, nil
}

// Render writes each machine's and worker pool's full config object and pointer user data, and the
// manifest.
func (Adapter) Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	configs, err := platforms.MachineIgnition(c, a)
	if err != nil {
		return nil, err
	}
	s := settingsOf(c)
	nodes := c.Machines()
	type rendered struct {
		object, userData []byte
		entry            Machine
	}
	out := make([]rendered, len(nodes))
	err = platforms.Each(len(nodes), func(i int) error {
		n := nodes[i]
		entry := Machine{IP: n.IP, InstanceType: s.types[n.Role]}
		// The config holds the etcd volume and the seal (MachineConfigs).
		object := configs[n.Name].Data
		if n.Role == spec.RoleController {
			entry.EtcdVolume = &EtcdVolume{ID: s.EtcdVolumeIDs[n.Name], Device: s.etcdDevice(n.Name), Size: s.size}
		}
		var userData []byte
		var err error
		if entry.Config, userData, err = s.pointer(n.Name+".ign", object, i == 0); err != nil {
			return fmt.Errorf("user data of %s: %w", n.Name, err)
		}
		out[i] = rendered{object: object, userData: userData, entry: entry}
		return nil
	})
	if err != nil {
		return nil, err
	}

	m := Manifest{Cluster: c.Name, Region: s.Region, Bucket: s.Bucket, AMI: s.AMI,
		Controllers: map[string]Machine{}, Workers: map[string]Machine{}, WorkerPools: map[string]Pool{}, BootedTag: BootedTag}
	files := make([]generator.Asset, 0, 2*(len(nodes)+len(c.WorkerPools))+1)
	for i, n := range nodes {
		r := out[i]
		if n.Role == spec.RoleController {
			m.Controllers[n.Name] = r.entry
		} else {
			m.Workers[n.Name] = r.entry
		}
		files = append(files,
			generator.Asset{Path: r.entry.Object, Kind: KindIgnitionObject, Node: n.Name, Role: n.Role, Mode: 0o600, Data: r.object},
			generator.Asset{Path: r.entry.UserData, Kind: KindUserData, Node: n.Name, Role: n.Role, Mode: 0o644, Data: r.userData},
		)
	}
	for _, p := range c.WorkerPools {
		pool := a.Get(path.Join(generator.OutPoolIgnitionDir, p.Name+".ign"))
		if pool == nil || pool.Kind != generator.KindIgnition {
			return nil, fmt.Errorf("the render holds no Ignition config for worker pool %s", p.Name)
		}
		entry := Pool{InstanceType: s.poolType(p.Name), MinSize: p.Size, DesiredCapacity: p.Size, MaxSize: p.MaxSize}
		var userData []byte
		if entry.Config, userData, err = s.pointer(path.Join("pools", p.Name+".ign"), pool.Data, false); err != nil {
			return nil, fmt.Errorf("user data of worker pool %s: %w", p.Name, err)
		}
		m.WorkerPools[p.Name] = entry
		files = append(files,
			generator.Asset{Path: entry.Object, Kind: KindPoolIgnitionObject, Role: spec.RoleWorker, Mode: 0o600, Data: pool.Data},
			generator.Asset{Path: entry.UserData, Kind: KindPoolUserData, Role: spec.RoleWorker, Mode: 0o644, Data: userData},
		)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(files, generator.Asset{Path: ManifestPath, Kind: KindManifest, Mode: 0o644, Data: append(manifest, '\n')}), nil
}

// pointer places a full config at rel (like node1.ign or pools/general.ign) under the platform's
// directories and key prefix, and returns where it is and the user data that fetches and verifies it.
// With check, the user data goes through Ignition's own parser; pointers differ only in their
// validated URL and hash, so Render checks one.
func (s settings) pointer(rel string, object []byte, check bool) (Config, []byte, error) {
	sum := sha512.Sum512(object)
	cfg := Config{
		UserData:     path.Join(Dir, "user-data", rel),
		Object:       path.Join(Dir, "ignition", rel),
		ObjectKey:    s.objectKey(rel),
		ConfigSHA512: hex.EncodeToString(sum[:]),
	}
	userData, err := pointerConfig(s.base+"/"+rel, cfg.ConfigSHA512, check)
	if err == nil && len(userData) > MaxUserData {
		err = fmt.Errorf("user data is %d bytes, more than EC2's %d", len(userData), MaxUserData)
	}
	return cfg, userData, err
}

// pointerConfig is the user data of a machine: replace this config with the one at source, if its
// sha512 matches. It is built as Ignition types: a cluster has one per machine.
func pointerConfig(source, sha512hex string, check bool) ([]byte, error) {
	hash := "sha512-" + sha512hex
	cfg := igntypes.Config{Ignition: igntypes.Ignition{
		Version: versions.IgnitionSpec,
		Config: igntypes.IgnitionConfig{Replace: igntypes.Resource{
			Source:       &source,
			Verification: igntypes.Verification{Hash: &hash},
		}},
	}}
	if check {
		return butane.Marshal(cfg)
	}
	return json.Marshal(cfg)
}

// etcdVolumeSnippet formats a controller's etcd volume if it is blank (an existing ext4 file system
// labelled etcd is kept with its data), mounts it at etcd's data directory, and makes etcd wait for
// the mount.
func etcdVolumeSnippet(header, device string) string {
	return header + fmt.Sprintf(`storage:
  filesystems:
    - device: %[1]s
      format: ext4
      label: etcd
      wipe_filesystem: false
      path: %[2]s
      with_mount_unit: true
systemd:
  units:
    - name: etcd.service
      dropins:
        - name: 10-liftoff-etcd-volume.conf
          contents: |
            [Unit]
            RequiresMountsFor=%[2]s
`, device, generator.HostEtcdDataDir)
}

// sealFile is liftoff-seal-config as an Ignition file, encoded and checked once: every machine
// carries the same.
var sealFile = sync.OnceValues(func() (igntypes.File, error) {
	f, err := butane.File(HostSealScript, 0o755, []byte(sealScript))
	if err != nil {
		return f, err
	}
	return f, butane.Validate(igntypes.Config{
		Ignition: igntypes.Ignition{Version: versions.IgnitionSpec},
		Storage:  igntypes.Storage{Files: []igntypes.File{f}},
		Systemd:  igntypes.Systemd{Units: []igntypes.Unit{sealUnit("bucket", "prefix/machine.ign", "region")}},
	})
})

// sealUnit runs liftoff-seal-config until it has tagged the machine's object as read by this
// instance. Ignition fetched the object before anything of the config ran, so the seal comes as soon
// as the network is up; a failed try is retried every 30 seconds, and the object stays readable (by
// this machine's role only) until one succeeds.
func sealUnit(bucket, key, region string) igntypes.Unit {
	enabled := true
	contents := fmt.Sprintf(`[Unit]
Description=Seal this machine's Ignition config in S3 against later reads (liftoff)
Wants=network-online.target
After=network-online.target
ConditionPathExists=!/var/lib/liftoff/config-sealed
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=%s %s %s %s %s
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
`, HostSealScript, bucket, key, region, BootedTag)
	return igntypes.Unit{Name: "liftoff-seal-config.service", Enabled: &enabled, Contents: &contents}
}
