package provider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

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

// machine is a machine's arguments as terraform passes them, with labels.
func machine(ip string, labels map[string]string) machineModel {
	l := types.MapNull(types.StringType)
	if labels != nil {
		elems := map[string]attr.Value{}
		for k, v := range labels {
			elems[k] = types.StringValue(v)
		}
		l = types.MapValueMust(types.StringType, elems)
	}
	return machineModel{IP: types.StringValue(ip), Labels: l,
		Taints: types.ListNull(types.StringType), Snippets: types.ListNull(types.StringType)}
}

// TestSpecOfBootstrapMachine checks that the bootstrap argument becomes the spec's bootstrap
// machine, and that a static control plane refuses it at the argument.
func TestSpecOfBootstrapMachine(t *testing.T) {
	ctx := context.Background()
	schema := clusterSchema()
	controllers, diags := types.MapValueFrom(ctx, schema.Attributes["controllers"].GetType().(types.MapType).ElemType,
		map[string]machineModel{"c1": machine("10.0.0.11", nil)})
	boot, d := types.ObjectValueFrom(ctx, schema.Attributes["bootstrap"].GetType().(types.ObjectType).AttrTypes,
		namedMachineModel{Name: types.StringValue("boot"), machineModel: machine("10.0.0.5", map[string]string{"example.com/temporary": "true"})})
	if diags.Append(d...); diags.HasError() {
		t.Fatal(diags)
	}
	m := &clusterModel{Controllers: controllers, clusterArgs: clusterArgs{
		Name: types.StringValue("acc"), APIServer: types.StringValue("https://10.0.0.10:6443"),
		ControlPlane: types.StringValue(spec.ControlPlaneSelfHosted), Bootstrap: boot,
	}}

	c, diags := completeSpec(ctx, m)
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

	m.ControlPlane = types.StringValue(spec.ControlPlaneStatic)
	_, diags = completeSpec(ctx, m)
	if len(diags) != 1 {
		t.Fatalf("a static cluster with a bootstrap machine: %v", diags)
	}
	withPath, ok := diags[0].(diag.DiagnosticWithPath)
	if !ok || !withPath.Path().Equal(path.Root("bootstrap")) || diags[0].Summary() != "Bootstrap machine without a pivot" ||
		!strings.Contains(diags[0].Detail(), "Field bootstrap.boot") {
		t.Errorf("a static cluster with a bootstrap machine: %T %s: %s", diags[0], diags[0].Summary(), diags[0].Detail())
	}
}

// TestSpecOfEtcdSnapshots checks that etcd_snapshots becomes the spec's snapshot settings, unset
// ones taking the spec's defaults, and that a bad one is refused at the argument with the CLI's
// message.
func TestSpecOfEtcdSnapshots(t *testing.T) {
	ctx := context.Background()
	schema := clusterSchema()
	controllers, diags := types.MapValueFrom(ctx, schema.Attributes["controllers"].GetType().(types.MapType).ElemType,
		map[string]machineModel{"c1": machine("10.0.0.11", nil)})
	if diags.HasError() {
		t.Fatal(diags)
	}
	snapshots := func(s etcdSnapshotsModel) types.Object {
		o, d := types.ObjectValueFrom(ctx, schema.Attributes["etcd_snapshots"].GetType().(types.ObjectType).AttrTypes, s)
		if d.HasError() {
			t.Fatal(d)
		}
		return o
	}
	model := func(snap types.Object) *clusterModel {
		return &clusterModel{Controllers: controllers, clusterArgs: clusterArgs{
			Name: types.StringValue("acc"), APIServer: types.StringValue("https://10.0.0.10:6443"), EtcdSnapshots: snap,
		}}
	}
	for _, tc := range []struct {
		name     string
		arg      types.Object
		enabled  bool
		interval string
		keep     int
	}{
		{"unset", types.ObjectNull(schema.Attributes["etcd_snapshots"].GetType().(types.ObjectType).AttrTypes), true, spec.DefaultEtcdSnapshotInterval, spec.DefaultEtcdSnapshotKeep},
		{"turned off", snapshots(etcdSnapshotsModel{Enabled: types.BoolValue(false), Interval: types.StringNull(), Keep: types.Int64Null()}), false, spec.DefaultEtcdSnapshotInterval, spec.DefaultEtcdSnapshotKeep},
		{"every 30 minutes, 48 kept", snapshots(etcdSnapshotsModel{Enabled: types.BoolNull(), Interval: types.StringValue("30m"), Keep: types.Int64Value(48)}), true, "30m", 48},
	} {
		c, diags := completeSpec(ctx, model(tc.arg))
		if diags.HasError() {
			t.Fatalf("%s: %v", tc.name, diags)
		}
		if s := c.EtcdSnapshots; *s.Enabled != tc.enabled || s.Interval != tc.interval || *s.Keep != tc.keep {
			t.Errorf("%s: enabled %v, interval %q, keep %d; want %v, %q, %d", tc.name, *s.Enabled, s.Interval, *s.Keep, tc.enabled, tc.interval, tc.keep)
		}
	}

	_, diags = completeSpec(ctx, model(snapshots(etcdSnapshotsModel{Enabled: types.BoolNull(), Interval: types.StringValue("1m"), Keep: types.Int64Value(0)})))
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
	ctx := context.Background()
	schema := clusterSchema()
	controllers, diags := types.MapValueFrom(ctx, schema.Attributes["controllers"].GetType().(types.MapType).ElemType,
		map[string]machineModel{"c1": machine("10.0.0.11", nil)})
	if diags.HasError() {
		t.Fatal(diags)
	}
	attrTypes := schema.Attributes["etcd_restore"].GetType().(types.ObjectType).AttrTypes
	model := func(restore types.Object) *clusterModel {
		return &clusterModel{Controllers: controllers, clusterArgs: clusterArgs{
			Name: types.StringValue("acc"), APIServer: types.StringValue("https://10.0.0.10:6443"), EtcdRestore: restore,
		}}
	}
	restore := func(url, sha256 types.String) types.Object {
		o, d := types.ObjectValueFrom(ctx, attrTypes, etcdRestoreModel{URL: url, SHA256: sha256})
		if d.HasError() {
			t.Fatal(d)
		}
		return o
	}

	c, diags := completeSpec(ctx, model(types.ObjectNull(attrTypes)))
	if diags.HasError() || c.EtcdRestore != nil {
		t.Errorf("unset: %v, restore %+v", diags, c.EtcdRestore)
	}
	sum := strings.Repeat("a1", 32)
	c, diags = completeSpec(ctx, model(restore(types.StringValue("https://backups.example.com/etcd.db"), types.StringValue(sum))))
	if diags.HasError() {
		t.Fatal(diags)
	}
	if r := c.EtcdRestore; r == nil || r.URL != "https://backups.example.com/etcd.db" || r.SHA256 != sum {
		t.Errorf("set: restore %+v", r)
	}

	_, diags = completeSpec(ctx, model(restore(types.StringValue("http://backups.example.com/etcd.db"), types.StringNull())))
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
