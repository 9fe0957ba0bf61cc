package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/liftoff-k8s/liftoff/spec"
)

func TestAttributePath(t *testing.T) {
	c := &spec.Cluster{
		Controllers: []spec.Node{{Name: "c1"}, {Name: "c1x"}},
		Workers:     []spec.Node{{Name: "w1"}, {Name: "bad.name"}},
		WorkerPools: []spec.WorkerPool{{Name: "general"}},
	}
	cases := []struct {
		field, summary string
		full, shown    path.Path
	}{
		{"cluster", "Invalid cluster name", path.Root("name"), path.Root("name")},
		{"cluster", "No controllers", path.Root("controllers"), path.Root("controllers")},
		{"cluster.pod_cidr", "", path.Root("pod_cidr"), path.Root("pod_cidr")},
		{"cluster.host_cidrs[1]", "", path.Root("host_cidrs").AtListIndex(1), path.Root("host_cidrs").AtListIndex(1)},
		{"cluster.ssh_authorized_keys[0]", "", path.Root("ssh_authorized_keys").AtListIndex(0), path.Root("ssh_authorized_keys").AtListIndex(0)},
		{"pki.renew_before", "", path.Root("renew_before"), path.Root("renew_before")},
		{"pki.extra_sans[2]", "", path.Root("pki").AtName("extra_sans").AtListIndex(2), path.Root("pki")},
		{"images.coredns", "", path.Root("images").AtName("coredns"), path.Root("images")},
		{"kubelet.sha512", "", path.Root("kubelet").AtName("sha512"), path.Root("kubelet")},
		{"controllers.snippets[0]", "", path.Root("controller_defaults").AtName("snippets").AtListIndex(0), path.Root("controller_defaults")},
		{`workers.labels["zone!"]`, "", path.Root("worker_defaults").AtName("labels").AtMapKey("zone!"), path.Root("worker_defaults")},
		{"controller.c1x", "", path.Root("controllers").AtMapKey("c1x"), path.Root("controllers").AtMapKey("c1x")},
		{"controller.c1.ip", "", path.Root("controllers").AtMapKey("c1").AtName("ip"), path.Root("controllers").AtMapKey("c1")},
		{"worker.w1.taints[1]", "", path.Root("workers").AtMapKey("w1").AtName("taints").AtListIndex(1), path.Root("workers").AtMapKey("w1")},
		{`worker.w1.labels["a/b"]`, "", path.Root("workers").AtMapKey("w1").AtName("labels").AtMapKey("a/b"), path.Root("workers").AtMapKey("w1")},
		{"worker.bad.name.mac", "", path.Root("workers").AtMapKey("bad.name").AtName("mac"), path.Root("workers").AtMapKey("bad.name")},
		{"worker.gone.ip", "", path.Root("workers"), path.Root("workers")},
		{"worker_pool.general.max_size", "", path.Root("worker_pools").AtMapKey("general").AtName("max_size"), path.Root("worker_pools").AtMapKey("general")},
		{"platform.matchbox.kernel_args[1]", "", path.Root("platform").AtName("matchbox").AtName("kernel_args").AtListIndex(1), path.Root("platform")},
		{`worker.w1.labels["example.com/zone"]`, "", path.Root("workers").AtMapKey("w1").AtName("labels").AtMapKey("example.com/zone"), path.Root("workers").AtMapKey("w1")},
		{"cni_plugins.delivery", "", path.Root("cni_plugins").AtName("delivery"), path.Root("cni_plugins")},
	}
	for _, tc := range cases {
		full := attributePath(spec.Problem{Field: tc.field, Summary: tc.summary}, c)
		if !full.Equal(tc.full) {
			t.Errorf("%s: path %s, want %s", tc.field, full, tc.full)
		}
		if shown := shownPath(full); !shown.Equal(tc.shown) {
			t.Errorf("%s: shown at %s, want %s", tc.field, shown, tc.shown)
		}
	}
}
