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

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/platforms/aws"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/spec"
)

const awsBlock = `platform "aws" {
    region = "eu-central-1"
    bucket = "liftoff-test-configs"
    etcd_volume_device = "/dev/xvdf"
  }`

// pool is a worker pool block for the cluster specs of these tests.
const pool = `
  worker_pool "general" {
    size     = 3
    max_size = 10
    labels   = { "liftoff.dev/pool" = "general" }
  }`

// TestUserDataFitsEC2AtEveryClusterSize renders clusters of 1 to 7 controllers with 1,000 workers
// and a worker pool, and checks every launch template's user data, the machines' and the pool's,
// against EC2's 16,384-byte limit.
func TestUserDataFitsEC2AtEveryClusterSize(t *testing.T) {
	for controllers := 1; controllers <= 7; controllers++ {
		t.Run(fmt.Sprintf("%d-controllers", controllers), func(t *testing.T) {
			t.Parallel()
			r := testcluster.Render(t, testcluster.Spec("flatcar", awsBlock, controllers, 1000, pool))
			userData := r.Files(aws.KindUserData)
			if len(userData) != controllers+1000 {
				t.Fatalf("%d user data files, want one per machine (%d)", len(userData), controllers+1000)
			}
			poolUserData := r.Files(aws.KindPoolUserData)
			if len(poolUserData) != 1 || poolUserData[0].Path != "aws/user-data/pools/general.ign" {
				t.Fatalf("pool user data %v, want aws/user-data/pools/general.ign", paths(poolUserData))
			}
			largest := map[generator.Kind]int{}
			for _, u := range append(userData, poolUserData...) {
				if len(u.Data) >= aws.MaxUserData {
					t.Errorf("%s is %d bytes: EC2 refuses user data of 16,384 bytes or more", u.Path, len(u.Data))
				}
				largest[u.Kind] = max(largest[u.Kind], len(u.Data))
			}
			for _, kind := range []generator.Kind{aws.KindIgnitionObject, aws.KindPoolIgnitionObject} {
				for _, o := range r.Files(kind) {
					largest[kind] = max(largest[kind], len(o.Data))
				}
			}
			t.Logf("largest user data: machine %d bytes, pool %d bytes; largest full config: machine %d bytes, pool %d bytes",
				largest[aws.KindUserData], largest[aws.KindPoolUserData], largest[aws.KindIgnitionObject], largest[aws.KindPoolIgnitionObject])
		})
	}
}

// TestWorkerPoolsBecomeAutoscalingGroups checks each pool's entry in the manifest (sizes for its
// autoscaling group, instance type, fingerprint) and its files: the generator's pool config as the
// object, and user data that fetches it from the pools' folder of the bucket and verifies it.
func TestWorkerPoolsBecomeAutoscalingGroups(t *testing.T) {
	block := strings.Replace(awsBlock, `region = "eu-central-1"`, `region = "eu-central-1"
    prefix = "clusters/test"
    worker_instance_type = "m6i.xlarge"
    worker_pool_instance_types = { gpu = "g5.xlarge" }`, 1)
	r := testcluster.Render(t, testcluster.Spec("flatcar", block, 1, 1, pool+`
  worker_pool "gpu" {
    size   = 0
    taints = ["gpu=true:NoSchedule"]
  }`))
	all := r.Assets
	var m aws.Manifest
	if err := json.Unmarshal(all.Get(aws.ManifestPath).Data, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.WorkerPools) != 2 || len(m.Workers) != 1 {
		t.Fatalf("manifest pools %v and workers %v, want the general and gpu pools and worker w1", keys(m.WorkerPools), keys(m.Workers))
	}
	sizes := map[string][4]any{"general": {"m6i.xlarge", 3, 3, 10}, "gpu": {"g5.xlarge", 0, 0, 0}}
	for name, want := range sizes {
		p := m.WorkerPools[name]
		if got := [4]any{p.InstanceType, p.MinSize, p.DesiredCapacity, p.MaxSize}; got != want {
			t.Errorf("pool %s: instance type, min, desired, max %v, want %v", name, got, want)
		}
		object, userData := all.Get(p.Object), all.Get(p.UserData)
		if object == nil || userData == nil || object.Kind != aws.KindPoolIgnitionObject || userData.Kind != aws.KindPoolUserData {
			t.Fatalf("pool %s: manifest names %s and %s, which the render does not hold with the pool kinds", name, p.Object, p.UserData)
		}
		for _, a := range []*generator.Asset{object, userData} {
			if a.Node != "" || a.Role != spec.RoleWorker {
				t.Errorf("%s belongs to machine %q with role %q, want no machine and the worker role", a.Path, a.Node, a.Role)
			}
		}
		if object.Mode != 0o600 {
			t.Errorf("%s has mode %o: it holds the bootstrap token", object.Path, object.Mode)
		}
		if !bytes.Equal(object.Data, r.Assets.Get("ignition/pools/"+name+".ign").Data) {
			t.Errorf("pool %s: the object is not the generator's pool config", name)
		}
		sum := sha512.Sum512(object.Data)
		if p.ConfigSHA512 != hex.EncodeToString(sum[:]) {
			t.Errorf("pool %s: fingerprint %s is not the sha512 of its object", name, p.ConfigSHA512)
		}
		if p.ObjectKey != "clusters/test/pools/"+name+".ign" {
			t.Errorf("pool %s: object key %s", name, p.ObjectKey)
		}
		replace := testcluster.ParseIgnition(t, userData.Data).Ignition.Config.Replace
		if want := "s3://liftoff-test-configs/" + p.ObjectKey; replace.Source == nil || *replace.Source != want {
			t.Errorf("pool %s: user data replaces itself with %v, want %s", name, replace.Source, want)
		}
		if h := replace.Verification.Hash; h == nil || *h != "sha512-"+p.ConfigSHA512 {
			t.Errorf("pool %s: user data verifies %v, not the object's sha512", name, h)
		}
	}
	if m.WorkerPools["general"].ConfigSHA512 == m.WorkerPools["gpu"].ConfigSHA512 {
		t.Error("pools with different taints have the same fingerprint")
	}
}

// TestWorkerPoolInstanceTypesAreChecked refuses pool instance types of the wrong format or
// architecture, and for pools the spec does not have, at the line and field of the entry.
func TestWorkerPoolInstanceTypesAreChecked(t *testing.T) {
	tests := []struct{ name, types, field, summary string }{
		{"unknown pool", `{ general = "m6i.large", batch = "c7i.large" }`, `platform.aws.worker_pool_instance_types["batch"]`, "Instance type for an unknown worker pool"},
		{"bad format", `{ general = "m6i-large" }`, `platform.aws.worker_pool_instance_types["general"]`, "Invalid instance type"},
		{"other architecture", `{ general = "m7g.large" }`, `platform.aws.worker_pool_instance_types["general"]`, "Instance type of another architecture"},
		{"empty", `{ general = "" }`, `platform.aws.worker_pool_instance_types["general"]`, "Invalid instance type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := testcluster.Spec("flatcar", strings.Replace(awsBlock, `region = "eu-central-1"`, "region = \"eu-central-1\"\n    worker_pool_instance_types = "+tt.types, 1), 1, 1, pool)
			got := testcluster.Problems(t, src)
			line := 1 + strings.Count(src[:strings.Index(src, "worker_pool_instance_types")], "\n")
			if want := fmt.Sprintf("cluster.hcl:%d: %s: %s", line, tt.field, tt.summary); !strings.Contains(got, want) {
				t.Errorf("problems lack %q:\n%s", want, got)
			}
			if strings.Count(got, "\n") != 0 {
				t.Errorf("more problems than the pool's instance type:\n%s", got)
			}
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
			all := r.Assets
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
// configs are uploaded as the generator rendered them but for the seal.
func TestControllersMountEtcdVolume(t *testing.T) {
	for _, os := range []string{spec.OSFlatcar, spec.OSFCOS} {
		t.Run(os, func(t *testing.T) {
			r := testcluster.Render(t, testcluster.Spec(os, `platform "aws" {
    region = "eu-central-1"
    bucket = "liftoff-test-configs"
    etcd_volume_ids = { c1 = "vol-0a1b2c3d4e5f60718" }
  }`, 1, 1, ""))
			all := r.Assets
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
			// Apart from the volume and the seal, the controller's config is the generator's; a
			// worker's is the generator's and the seal.
			plain := r.Plain(t)
			rendered := testcluster.ParseIgnition(t, plain.Get("ignition/c1.ign").Data)
			if len(rendered.Storage.Files)+1 != len(cfg.Storage.Files) || len(rendered.Systemd.Units)+2 != len(cfg.Systemd.Units) {
				t.Errorf("controller object has %d files and %d units; the rendered config %d and %d, and the seal adds a file and a unit", len(cfg.Storage.Files), len(cfg.Systemd.Units), len(rendered.Storage.Files), len(rendered.Systemd.Units))
			}
			worker := testcluster.ParseIgnition(t, all.Get("aws/ignition/w1.ign").Data)
			renderedWorker := testcluster.ParseIgnition(t, plain.Get("ignition/w1.ign").Data)
			if len(worker.Storage.Filesystems) != 0 || len(renderedWorker.Storage.Files)+1 != len(worker.Storage.Files) || len(renderedWorker.Systemd.Units)+1 != len(worker.Systemd.Units) {
				t.Errorf("worker object has %d files and %d units; the rendered config %d and %d, and the seal adds a file and a unit", len(worker.Storage.Files), len(worker.Systemd.Units), len(renderedWorker.Storage.Files), len(renderedWorker.Systemd.Units))
			}
		})
	}
}

func paths(as []generator.Asset) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Path
	}
	return out
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
