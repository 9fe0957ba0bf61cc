package aws_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/platforms/aws"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/spec"
)

const awsBlock = `platform "aws" {
    region = "eu-central-1"
    bucket = "liftoff-test-configs"
    etcd_volume_device = "/dev/xvdf"
  }`

// TestUserDataFitsEC2AtEveryClusterSize renders clusters of 1 to 7 controllers with 1,000 workers
// and checks every launch template's user data against EC2's 16,384-byte limit.
func TestUserDataFitsEC2AtEveryClusterSize(t *testing.T) {
	for controllers := 1; controllers <= 7; controllers++ {
		t.Run(fmt.Sprintf("%d-controllers", controllers), func(t *testing.T) {
			t.Parallel()
			r := testcluster.Render(t, testcluster.Spec("flatcar", awsBlock, controllers, 1000, ""))
			userData := r.Files(aws.KindUserData)
			if len(userData) != controllers+1000 {
				t.Fatalf("%d user data files, want one per machine (%d)", len(userData), controllers+1000)
			}
			largest := 0
			for _, u := range userData {
				if len(u.Data) >= 16384 {
					t.Errorf("%s is %d bytes: EC2 refuses user data of 16,384 bytes or more", u.Path, len(u.Data))
				}
				largest = max(largest, len(u.Data))
			}
			var objects int
			for _, o := range r.Files(aws.KindIgnitionObject) {
				objects = max(objects, len(o.Data))
			}
			t.Logf("largest user data %d bytes; largest full config %d bytes", largest, objects)
		})
	}
}

// TestUserDataPointsAtVerifiedObjects checks each machine's user data: a valid Ignition 3.4.0
// config that replaces itself with the machine's object in the bucket, pinned by the object's sha512,
// and the manifest that tells Terraform where everything is.
func TestUserDataPointsAtVerifiedObjects(t *testing.T) {
	tests := []struct{ name, block, source string }{
		{"s3", `platform "aws" {
    region = "us-east-1"
    bucket = "liftoff-test-configs"
    prefix = "clusters/test"
    ami    = "ami-0123456789abcdef0"
    controller_instance_type = "m6i.xlarge"
    etcd_volume_ids = { c1 = "vol-0123456789abcdef0", c2 = "vol-0123456789abcdef1", c3 = "vol-0123456789abcdef2" }
  }`, "s3://liftoff-test-configs/clusters/test/"},
		{"https", `platform "aws" {
    region = "us-east-1"
    bucket = "liftoff-test-configs"
    config_base_url = "https://configs.internal.example.com/liftoff/"
    etcd_volume_device = "/dev/xvdf"
  }`, "https://configs.internal.example.com/liftoff/test/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testcluster.Render(t, testcluster.Spec("flatcar", tt.block, 3, 2, ""))
			all := r.All()
			var m aws.Manifest
			if err := json.Unmarshal(all.Get(aws.ManifestPath).Data, &m); err != nil {
				t.Fatal(err)
			}
			if len(m.Controllers) != 3 || len(m.Workers) != 2 || m.Bucket != "liftoff-test-configs" {
				t.Fatalf("manifest: %+v", m)
			}
			for _, n := range r.Cluster.Machines() {
				entry := m.Workers[n.Name]
				if n.Role == spec.RoleController {
					entry = m.Controllers[n.Name]
				}
				object := all.Get(entry.Object)
				userData := all.Get(entry.UserData)
				if object == nil || userData == nil || object.Kind != aws.KindIgnitionObject || userData.Kind != aws.KindUserData {
					t.Fatalf("%s: manifest names %s and %s, which the render does not hold with their kinds", n.Name, entry.Object, entry.UserData)
				}
				sum := sha512.Sum512(object.Data)
				if hex.EncodeToString(sum[:]) != entry.ConfigSHA512 {
					t.Errorf("%s: manifest fingerprint is not the sha512 of %s", n.Name, entry.Object)
				}
				cfg := testcluster.ParseIgnition(t, userData.Data)
				replace := cfg.Ignition.Config.Replace
				if replace.Source == nil || *replace.Source != tt.source+n.Name+".ign" {
					t.Errorf("%s: user data replaces itself with %v, want %s", n.Name, replace.Source, tt.source+n.Name+".ign")
				}
				if h := replace.Verification.Hash; h == nil || *h != "sha512-"+hex.EncodeToString(sum[:]) {
					t.Errorf("%s: user data verifies %v, not the sha512 of the object", n.Name, h)
				}
				if !strings.HasSuffix(tt.source, strings.TrimSuffix(entry.ObjectKey, n.Name+".ign")) {
					t.Errorf("%s: object key %s does not match the user data's source %s", n.Name, entry.ObjectKey, tt.source)
				}
				testcluster.ParseIgnition(t, object.Data)
			}
			if tt.name == "s3" {
				if m.AMI != "ami-0123456789abcdef0" || m.Controllers["c1"].InstanceType != "m6i.xlarge" || m.Workers["w1"].InstanceType != "m6i.large" {
					t.Errorf("manifest settings: %+v", m)
				}
			}
		})
	}
}

// TestControllersMountEtcdVolume checks that controller configs format their etcd volume only when
// blank, mount it at /var/lib/etcd by its NVMe name, and start etcd after the mount, and that worker
// configs are uploaded as the generator rendered them.
func TestControllersMountEtcdVolume(t *testing.T) {
	for _, os := range []string{spec.OSFlatcar, spec.OSFCOS} {
		t.Run(os, func(t *testing.T) {
			r := testcluster.Render(t, testcluster.Spec(os, `platform "aws" {
    region = "eu-central-1"
    bucket = "liftoff-test-configs"
    etcd_volume_ids = { c1 = "vol-0a1b2c3d4e5f60718" }
  }`, 1, 1, ""))
			all := r.All()
			cfg := testcluster.ParseIgnition(t, all.Get("aws/ignition/c1.ign").Data)
			if len(cfg.Storage.Filesystems) != 1 {
				t.Fatalf("controller config has filesystems %+v, want the etcd volume", cfg.Storage.Filesystems)
			}
			fs := cfg.Storage.Filesystems[0]
			if fs.Device != "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60718" ||
				deref(fs.Format) != "ext4" || deref(fs.Label) != "etcd" || deref(fs.Path) != "/var/lib/etcd" ||
				fs.WipeFilesystem == nil || *fs.WipeFilesystem {
				t.Errorf("etcd file system: %s", mustJSON(fs))
			}
			var mount, etcd *igntypes.Unit
			for i, u := range cfg.Systemd.Units {
				switch u.Name {
				case "var-lib-etcd.mount":
					mount = &cfg.Systemd.Units[i]
				case "etcd.service":
					etcd = &cfg.Systemd.Units[i]
				}
			}
			if mount == nil || !strings.Contains(deref(mount.Contents), "What=/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0a1b2c3d4e5f60718") || mount.Enabled == nil || !*mount.Enabled {
				t.Errorf("no enabled mount unit for the etcd volume: %s", mustJSON(mount))
			}
			if etcd == nil || etcd.Contents == nil || len(etcd.Dropins) != 1 || !strings.Contains(deref(etcd.Dropins[0].Contents), "RequiresMountsFor=/var/lib/etcd") {
				t.Errorf("etcd.service does not wait for the volume: %s", mustJSON(etcd))
			}
			// Apart from the volume, the controller's config is the generator's.
			rendered := testcluster.ParseIgnition(t, r.Assets.Get("ignition/c1.ign").Data)
			if len(rendered.Storage.Files) != len(cfg.Storage.Files) || len(rendered.Systemd.Units)+1 != len(cfg.Systemd.Units) {
				t.Errorf("controller object has %d files and %d units; the rendered config %d and %d", len(cfg.Storage.Files), len(cfg.Systemd.Units), len(rendered.Storage.Files), len(rendered.Systemd.Units))
			}
			if !bytes.Equal(all.Get("aws/ignition/w1.ign").Data, r.Assets.Get("ignition/w1.ign").Data) {
				t.Error("the worker's object differs from its rendered Ignition config")
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
