package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/liftoff-k8s/liftoff/spec"
)

func TestAttributePath(t *testing.T) {
	cases := []struct {
		at          spec.Path
		full, shown path.Path
	}{
		{spec.At("cluster"), path.Root("name"), path.Root("name")},
		{spec.At("cluster", "controllers"), path.Root("controllers"), path.Root("controllers")},
		{spec.At("cluster", "pod_cidr"), path.Root("pod_cidr"), path.Root("pod_cidr")},
		{spec.At("cluster", "host_cidrs").Index(1), path.Root("host_cidrs").AtListIndex(1), path.Root("host_cidrs").AtListIndex(1)},
		{spec.At("cluster", "ssh_authorized_keys").Index(0), path.Root("ssh_authorized_keys").AtListIndex(0), path.Root("ssh_authorized_keys").AtListIndex(0)},
		{spec.At("pki", "renew_before"), path.Root("renew_before"), path.Root("renew_before")},
		{spec.At("pki", "extra_sans").Index(2), path.Root("pki").AtName("extra_sans").AtListIndex(2), path.Root("pki")},
		{spec.At("images", "coredns"), path.Root("images").AtName("coredns"), path.Root("images")},
		{spec.At("kubelet", "sha512"), path.Root("kubelet").AtName("sha512"), path.Root("kubelet")},
		{spec.At("controllers", "snippets").Index(0), path.Root("controller_defaults").AtName("snippets").AtListIndex(0), path.Root("controller_defaults")},
		{spec.At("workers", "labels").Key("zone!"), path.Root("worker_defaults").AtName("labels").AtMapKey("zone!"), path.Root("worker_defaults")},
		{spec.Block("controller", "c1x"), path.Root("controllers").AtMapKey("c1x"), path.Root("controllers").AtMapKey("c1x")},
		{spec.Block("controller", "c1").Attr("ip"), path.Root("controllers").AtMapKey("c1").AtName("ip"), path.Root("controllers").AtMapKey("c1")},
		{spec.Block("worker", "w1").Attr("taints").Index(1), path.Root("workers").AtMapKey("w1").AtName("taints").AtListIndex(1), path.Root("workers").AtMapKey("w1")},
		{spec.Block("worker", "w1").Attr("labels").Key("a/b"), path.Root("workers").AtMapKey("w1").AtName("labels").AtMapKey("a/b"), path.Root("workers").AtMapKey("w1")},
		// A name with dots is one label: the path does not split it.
		{spec.Block("worker", "bad.name").Attr("mac"), path.Root("workers").AtMapKey("bad.name").AtName("mac"), path.Root("workers").AtMapKey("bad.name")},
		{spec.Block("worker_pool", "general").Attr("max_size"), path.Root("worker_pools").AtMapKey("general").AtName("max_size"), path.Root("worker_pools").AtMapKey("general")},
		{spec.PlatformField("matchbox", "kernel_args").Index(1), path.Root("platform").AtName("matchbox").AtName("kernel_args").AtListIndex(1), path.Root("platform")},
		{spec.Block("worker", "w1").Attr("labels").Key("example.com/zone"), path.Root("workers").AtMapKey("w1").AtName("labels").AtMapKey("example.com/zone"), path.Root("workers").AtMapKey("w1")},
		{spec.At("cni_plugins", "delivery"), path.Root("cni_plugins").AtName("delivery"), path.Root("cni_plugins")},
		{spec.Block("bootstrap", "boot"), path.Root("bootstrap"), path.Root("bootstrap")},
		{spec.Block("bootstrap", "boot").Attr("ip"), path.Root("bootstrap").AtName("ip"), path.Root("bootstrap")},
		{spec.Block("bootstrap", "boot").Attr("labels").Key("a/b"), path.Root("bootstrap").AtName("labels").AtMapKey("a/b"), path.Root("bootstrap")},
		{spec.At("etcd_snapshots", "interval"), path.Root("etcd_snapshots").AtName("interval"), path.Root("etcd_snapshots")},
		{spec.At("etcd_restore", "sha256"), path.Root("etcd_restore").AtName("sha256"), path.Root("etcd_restore")},
		{spec.At("machine_secrets"), path.Root("machine_secrets"), path.Root("machine_secrets")},
	}
	for _, tc := range cases {
		full := attributePath(spec.Problem{Path: tc.at})
		if !full.Equal(tc.full) {
			t.Errorf("%s: path %s, want %s", tc.at, full, tc.full)
		}
		if shown := shownPath(full); !shown.Equal(tc.shown) {
			t.Errorf("%s: shown at %s, want %s", tc.at, shown, tc.shown)
		}
	}
}

// args is liftoff_cluster's arguments as terraform passes them, written as JSON; arguments left
// out are null.
func args(t *testing.T, js string) tftypes.Value {
	t.Helper()
	v, err := tftypes.ValueFromJSONWithOpts([]byte(js), clusterSchema().Type().TerraformType(context.Background()), tftypes.ValueFromJSONOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSpecOfBootstrapMachine checks that the bootstrap argument becomes the spec's bootstrap
// machine, and that a static control plane refuses it at the argument.
func TestSpecOfBootstrapMachine(t *testing.T) {
	cluster := func(controlPlane string) tftypes.Value {
		return args(t, `{"name": "acc", "api_server": "https://10.0.0.10:6443", "control_plane": "`+controlPlane+`",
			"controllers": {"c1": {"ip": "10.0.0.11"}},
			"bootstrap": {"name": "boot", "ip": "10.0.0.5", "labels": {"example.com/temporary": "true"}}}`)
	}
	c, diags := completeSpec(cluster(spec.ControlPlaneSelfHosted))
	if diags.HasError() {
		t.Fatal(diags)
	}
	if b := c.Bootstrap; b == nil || b.Name != "boot" || b.Role != spec.RoleBootstrap || b.IP != "10.0.0.5" || b.Labels["example.com/temporary"] != "true" {
		t.Fatalf("bootstrap machine in the spec: %+v", b)
	}
	var names []string
	for _, n := range c.Machines() {
		names = append(names, n.Role+"."+n.Name)
	}
	if want := []string{"bootstrap.boot", "controller.c1"}; !slices.Equal(names, want) {
		t.Errorf("machines %v, want %v", names, want)
	}

	_, diags = completeSpec(cluster(spec.ControlPlaneStatic))
	if len(diags) != 1 {
		t.Fatalf("a static cluster with a bootstrap machine: %v", diags)
	}
	withPath, ok := diags[0].(diag.DiagnosticWithPath)
	if !ok || !withPath.Path().Equal(path.Root("bootstrap")) || diags[0].Summary() != "Bootstrap machine without a pivot" ||
		!strings.Contains(diags[0].Detail(), "Field bootstrap.boot") {
		t.Errorf("a static cluster with a bootstrap machine: %T %s: %s", diags[0], diags[0].Summary(), diags[0].Detail())
	}
}

// TestSpecOfArguments checks that every kind of argument reaches the spec: scalars, lists, maps,
// nested objects, machines keyed by name, pools, role defaults, the hoisted renewal window and a
// platform's settings.
func TestSpecOfArguments(t *testing.T) {
	c, err := specOfArgs(args(t, `{"name": "acc", "api_server": "https://10.0.0.10:6443", "host_cidrs": ["10.0.0.0/24"],
		"allow_even_controllers": true, "renew_before": "10d",
		"pki": {"key_algorithm": "rsa-2048", "extra_sans": ["api.example.com"]},
		"kubelet": {"delivery": "sysext", "sha512": "ab"},
		"etcd_snapshots": {"keep": 3},
		"controller_defaults": {"taints": ["a=b:NoSchedule"]},
		"worker_defaults": {"labels": {"zone": "a"}},
		"controllers": {"c2": {"ip": "10.0.0.12"}, "c1": {"ip": "10.0.0.11", "mac": "52:54:00:00:00:11"}},
		"workers": {"w1": {"ip": "10.0.0.21", "snippets": ["variant: flatcar"]}},
		"worker_pools": {"general": {"size": 3, "labels": {"pool": "general"}}},
		"platform": {"vagrant": {"box": "flatcar-stable"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %s %v %v | %s %v %s | %s %s | %d | %v %v | %s %s %s %s | %s %s | %s %d %v | %s %v",
		c.Name, c.APIServer, c.HostCIDRs, c.AllowEvenControllers,
		c.PKI.KeyAlgorithm, c.PKI.ExtraSANs, c.PKI.RenewBefore,
		c.Kubelet.Delivery, c.Kubelet.SHA512, *c.EtcdSnapshots.Keep,
		c.ControllerDefaults.Taints, c.WorkerDefaults.Labels,
		c.Controllers[0].Name, c.Controllers[0].MAC, c.Controllers[1].Name, c.Controllers[1].IP,
		c.Workers[0].Name, c.Workers[0].Snippets[0],
		c.WorkerPools[0].Name, c.WorkerPools[0].Size, c.WorkerPools[0].Labels,
		c.Platform.Kind, c.Platform.Settings)
	want := "acc https://10.0.0.10:6443 [10.0.0.0/24] true | rsa-2048 [api.example.com] 10d | sysext ab | 3 | " +
		"[a=b:NoSchedule] map[zone:a] | c1 52:54:00:00:00:11 c2 10.0.0.12 | w1 variant: flatcar | general 3 map[pool:general] | vagrant "
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "flatcar-stable") {
		t.Errorf("spec of the arguments:\n  %s\nwant\n  %s...flatcar-stable", got, want)
	}
	if c.Images != nil || c.Etcd != nil || c.Bootstrap != nil {
		t.Errorf("unset arguments became settings: images %v, etcd %v, bootstrap %v", c.Images, c.Etcd, c.Bootstrap)
	}
}

// TestSpecOfEtcdSnapshots checks that etcd_snapshots becomes the spec's snapshot settings, unset
// ones taking the spec's defaults, and that a bad one is refused at the argument with the CLI's
// message.
func TestSpecOfEtcdSnapshots(t *testing.T) {
	cluster := func(snapshots string) tftypes.Value {
		return args(t, `{"name": "acc", "api_server": "https://10.0.0.10:6443", "controllers": {"c1": {"ip": "10.0.0.11"}},
			"etcd_snapshots": `+snapshots+`}`)
	}
	for _, tc := range []struct {
		name     string
		arg      string
		enabled  bool
		interval string
		keep     int
	}{
		{"unset", "null", true, spec.DefaultEtcdSnapshotInterval, spec.DefaultEtcdSnapshotKeep},
		{"turned off", `{"enabled": false}`, false, spec.DefaultEtcdSnapshotInterval, spec.DefaultEtcdSnapshotKeep},
		{"every 30 minutes, 48 kept", `{"interval": "30m", "keep": 48}`, true, "30m", 48},
	} {
		c, diags := completeSpec(cluster(tc.arg))
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
		}
		if s := c.EtcdSnapshots; *s.Enabled != tc.enabled || s.Interval != tc.interval || *s.Keep != tc.keep {
			t.Errorf("%s: enabled %v, interval %q, keep %d; want %v, %q, %d", tc.name, *s.Enabled, s.Interval, *s.Keep, tc.enabled, tc.interval, tc.keep)
		}
	}

	_, diags := completeSpec(cluster(`{"interval": "1m", "keep": 0}`))
	var got []string
	for _, d := range diags {
		withPath, ok := d.(diag.DiagnosticWithPath)
		if !ok || !withPath.Path().Equal(path.Root("etcd_snapshots")) {
			t.Errorf("%s is not reported at etcd_snapshots", d.Summary())
		}
		got = append(got, d.Summary()+": "+d.Detail())
	}
	want := []string{
		"Snapshot interval too short: Field etcd_snapshots.interval: 1m: snapshots must be at least 5m apart, as each one reads the whole etcd database",
		"Invalid snapshot count: Field etcd_snapshots.keep: keep = 0: keep at least 1 snapshot, or set enabled = false to take none",
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestSpecOfEtcdRestore checks that etcd_restore becomes the spec's snapshot to restore, none when
// unset, and that a missing or bad setting is refused at the argument with the CLI's message.
func TestSpecOfEtcdRestore(t *testing.T) {
	cluster := func(restore string) tftypes.Value {
		return args(t, `{"name": "acc", "api_server": "https://10.0.0.10:6443", "controllers": {"c1": {"ip": "10.0.0.11"}},
			"etcd_restore": `+restore+`}`)
	}
	c, diags := completeSpec(cluster("null"))
	if diags.HasError() || c.EtcdRestore != nil {
		t.Errorf("unset: %v, restore %+v", diags, c.EtcdRestore)
	}
	sum := strings.Repeat("a1", 32)
	c, diags = completeSpec(cluster(`{"url": "https://backups.example.com/etcd.db", "sha256": "` + sum + `"}`))
	if diags.HasError() {
		t.Fatal(diags)
	}
	if r := c.EtcdRestore; r == nil || r.URL != "https://backups.example.com/etcd.db" || r.SHA256 != sum {
		t.Errorf("set: restore %+v", r)
	}

	_, diags = completeSpec(cluster(`{"url": "http://backups.example.com/etcd.db"}`))
	var got []string
	for _, d := range diags {
		withPath, ok := d.(diag.DiagnosticWithPath)
		if !ok || !withPath.Path().Equal(path.Root("etcd_restore")) {
			t.Errorf("%s is not reported at etcd_restore", d.Summary())
		}
		got = append(got, d.Summary()+": "+d.Detail())
	}
	want := []string{
		`Invalid URL: Field etcd_restore.url: "http://backups.example.com/etcd.db" must be an https URL, with anything but RFC 3986's characters percent-encoded`,
		"Missing sha256: Field etcd_restore.sha256: a snapshot is restored only when it matches its digest: set sha256 to the 64 hex digits of its .sha256 file",
	}
	if !slices.Equal(got, want) {
		t.Errorf("diagnostics\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
