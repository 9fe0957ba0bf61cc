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
package aws

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"

	"github.com/liftoff-k8s/liftoff/generator"
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

// Adapter is the AWS platform.
type Adapter struct{}

func init() { platforms.Register(Adapter{}) }

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

// Render writes each machine's and worker pool's full config object and pointer user data, and the
// manifest.
func (Adapter) Render(c *spec.Cluster, a *generator.Assets) ([]generator.Asset, error) {
	configs, err := platforms.MachineIgnition(c, a)
	if err != nil {
		return nil, err
	}
	s := settingsOf(c)
	header := platforms.ButaneHeader(c)
	nodes := c.Machines()
	type rendered struct {
		object, userData []byte
		entry            Machine
	}
	out := make([]rendered, len(nodes))
	err = platforms.Each(len(nodes), func(i int) error {
		n := nodes[i]
		entry := Machine{IP: n.IP, InstanceType: s.types[n.Role]}
		object := configs[n.Name].Data
		var err error
		if n.Role == spec.RoleController {
			entry.EtcdVolume = &EtcdVolume{ID: s.EtcdVolumeIDs[n.Name], Device: s.etcdDevice(n.Name), Size: s.size}
			if object, err = platforms.Merge(object, etcdVolumeSnippet(header, entry.EtcdVolume.Device)); err != nil {
				return fmt.Errorf("etcd volume of %s: %w", n.Name, err)
			}
		}
		var userData []byte
		if entry.Config, userData, err = s.pointer(header, n.Name+".ign", object); err != nil {
			return fmt.Errorf("user data of %s: %w", n.Name, err)
		}
		out[i] = rendered{object: object, userData: userData, entry: entry}
		return nil
	})
	if err != nil {
		return nil, err
	}

	m := Manifest{Cluster: c.Name, Region: s.Region, Bucket: s.Bucket, AMI: s.AMI,
		Controllers: map[string]Machine{}, Workers: map[string]Machine{}, WorkerPools: map[string]Pool{}}
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
		if entry.Config, userData, err = s.pointer(header, path.Join("pools", p.Name+".ign"), pool.Data); err != nil {
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
func (s settings) pointer(header, rel string, object []byte) (Config, []byte, error) {
	sum := sha512.Sum512(object)
	cfg := Config{
		UserData:     path.Join(Dir, "user-data", rel),
		Object:       path.Join(Dir, "ignition", rel),
		ObjectKey:    s.prefix + "/" + rel,
		ConfigSHA512: hex.EncodeToString(sum[:]),
	}
	userData, err := platforms.Translate(pointerConfig(header, s.base+"/"+rel, cfg.ConfigSHA512))
	if err == nil && len(userData) > MaxUserData {
		err = fmt.Errorf("user data is %d bytes, more than EC2's %d", len(userData), MaxUserData)
	}
	return cfg, userData, err
}

// pointerConfig is the user data of a machine: replace this config with the one at source, if its
// sha512 matches.
func pointerConfig(header, source, sha512hex string) string {
	return header + fmt.Sprintf(`ignition:
  config:
    replace:
      source: %s
      verification:
        hash: sha512-%s
`, source, sha512hex)
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
