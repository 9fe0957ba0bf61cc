package provider

import (
	"context"
	"sort"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/liftoff-k8s/liftoff/spec"
)

// specOf builds the spec the arguments describe. Every argument must be known.
func specOf(ctx context.Context, m *clusterModel) (*spec.Cluster, diag.Diagnostics) {
	var diags diag.Diagnostics
	strs := func(l types.List) []string { return listOf(ctx, l, &diags) }
	labels := func(mp types.Map) map[string]string { return mapOf(ctx, mp, &diags) }
	object := func(o types.Object, target any) bool {
		if o.IsNull() {
			return false
		}
		diags.Append(o.As(ctx, target, basetypes.ObjectAsOptions{})...)
		return true
	}

	c := &spec.Cluster{
		Name:                 m.Name.ValueString(),
		KubernetesVersion:    m.KubernetesVersion.ValueString(),
		OS:                   m.OS.ValueString(),
		ControlPlane:         m.ControlPlane.ValueString(),
		APIServer:            m.APIServer.ValueString(),
		PodCIDR:              m.PodCIDR.ValueString(),
		ServiceCIDR:          m.ServiceCIDR.ValueString(),
		HostCIDRs:            strs(m.HostCIDRs),
		ClusterDomain:        m.ClusterDomain.ValueString(),
		Networking:           m.Networking.ValueString(),
		SSHAuthorizedKeys:    strs(m.SSHAuthorizedKeys),
		AllowEvenControllers: m.AllowEvenControllers.ValueBool(),
		Arch:                 m.Arch.ValueString(),
	}
	c.PKI = &spec.PKI{RenewBefore: m.RenewBefore.ValueString()}
	var p pkiModel
	if object(m.PKI, &p) {
		c.PKI.KeyAlgorithm = p.KeyAlgorithm.ValueString()
		c.PKI.CAValidity = p.CAValidity.ValueString()
		c.PKI.CertValidity = p.CertValidity.ValueString()
		c.PKI.ExtraSANs = strs(p.ExtraSANs)
		c.PKI.BootstrapTokenTTL = p.TokenTTL.ValueString()
	}
	var img imagesModel
	if object(m.Images, &img) {
		c.Images = &spec.Images{
			KubeAPIServer:         img.KubeAPIServer.ValueString(),
			KubeControllerManager: img.KubeControllerManager.ValueString(),
			KubeScheduler:         img.KubeScheduler.ValueString(),
			KubeProxy:             img.KubeProxy.ValueString(),
			CoreDNS:               img.CoreDNS.ValueString(),
			Flannel:               img.Flannel.ValueString(),
			FlannelCNIPlugin:      img.FlannelCNIPlugin.ValueString(),
			Pause:                 img.Pause.ValueString(),
			Liftoff:               img.Liftoff.ValueString(),
		}
	}
	program := func(o types.Object) *spec.Program {
		var pm programModel
		if !object(o, &pm) {
			return nil
		}
		return &spec.Program{Delivery: pm.Delivery.ValueString(), Version: pm.Version.ValueString(),
			URL: pm.URL.ValueString(), SHA512: pm.SHA512.ValueString(), Image: pm.Image.ValueString()}
	}
	c.Kubelet = program(m.Kubelet)
	c.Etcd = program(m.Etcd)
	c.CNIPlugins = program(m.CNIPlugins)
	var snap etcdSnapshotsModel
	if object(m.EtcdSnapshots, &snap) {
		c.EtcdSnapshots = &spec.EtcdSnapshots{Enabled: snap.Enabled.ValueBoolPointer(), Interval: snap.Interval.ValueString()}
		if !snap.Keep.IsNull() {
			keep := int(snap.Keep.ValueInt64())
			c.EtcdSnapshots.Keep = &keep
		}
	}
	var secrets machineSecretsModel
	if object(m.MachineSecrets, &secrets) {
		c.MachineSecrets = &spec.MachineSecrets{Server: secrets.Server.ValueString(), InIgnition: secrets.InIgnition.ValueBool()}
	}
	var restore etcdRestoreModel
	if object(m.EtcdRestore, &restore) {
		c.EtcdRestore = &spec.EtcdRestore{URL: restore.URL.ValueString(), SHA256: restore.SHA256.ValueString()}
	}
	role := func(o types.Object) *spec.RoleDefaults {
		var rm roleDefaultsModel
		if !object(o, &rm) {
			return nil
		}
		return &spec.RoleDefaults{Labels: labels(rm.Labels), Taints: strs(rm.Taints), Snippets: strs(rm.Snippets)}
	}
	c.ControllerDefaults = role(m.ControllerDefaults)
	c.WorkerDefaults = role(m.WorkerDefaults)
	node := func(name, role string, mm machineModel) spec.Node {
		return spec.Node{Name: name, Role: role, IP: mm.IP.ValueString(), MAC: mm.MAC.ValueString(),
			Domain: mm.Domain.ValueString(), Labels: labels(mm.Labels), Taints: strs(mm.Taints),
			Snippets: strs(mm.Snippets), InstallDisk: mm.InstallDisk.ValueString()}
	}
	machines := func(mp types.Map, role string) []spec.Node {
		if mp.IsNull() {
			return nil
		}
		byName := map[string]machineModel{}
		diags.Append(mp.ElementsAs(ctx, &byName, false)...)
		out := make([]spec.Node, 0, len(byName))
		for _, n := range sortedKeys(byName) {
			out = append(out, node(n, role, byName[n]))
		}
		return out
	}
	var boot namedMachineModel
	if object(m.Bootstrap, &boot) {
		n := node(boot.Name.ValueString(), spec.RoleBootstrap, boot.machineModel)
		c.Bootstrap = &n
	}
	c.Controllers = machines(m.Controllers, spec.RoleController)
	c.Workers = machines(m.Workers, spec.RoleWorker)
	c.Platform = platformOf(ctx, m.Platform, &diags)
	if !m.WorkerPools.IsNull() {
		byName := map[string]workerPoolModel{}
		diags.Append(m.WorkerPools.ElementsAs(ctx, &byName, false)...)
		for _, n := range sortedKeys(byName) {
			pm := byName[n]
			c.WorkerPools = append(c.WorkerPools, spec.WorkerPool{Name: n, Size: int(pm.Size.ValueInt64()),
				MaxSize: int(pm.MaxSize.ValueInt64()), Labels: labels(pm.Labels), Taints: strs(pm.Taints), Snippets: strs(pm.Snippets)})
		}
	}
	return c, diags
}

// listOf is a list of strings in Go, nil when null.
func listOf(ctx context.Context, l types.List, diags *diag.Diagnostics) []string {
	if l.IsNull() || l.IsUnknown() {
		return nil
	}
	var out []string
	diags.Append(l.ElementsAs(ctx, &out, false)...)
	return out
}

// mapOf is a map of strings in Go, nil when null.
func mapOf(ctx context.Context, m types.Map, diags *diag.Diagnostics) map[string]string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	out := map[string]string{}
	diags.Append(m.ElementsAs(ctx, &out, false)...)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// completeSpec builds and validates the spec. Problems become errors on the attributes they are
// about, with the summary and detail the CLI prints for them.
func completeSpec(ctx context.Context, m *clusterModel) (*spec.Cluster, diag.Diagnostics) {
	c, diags := specOf(ctx, m)
	if diags.HasError() {
		return nil, diags
	}
	full, err := spec.Complete(c)
	if inv, ok := spec.AsInvalid(err); ok {
		for i, d := range inv.Problems.Diagnostics(inv.Cluster) {
			diags.AddAttributeError(shownPath(attributePath(inv.Problems[i])), d.Summary, d.Detail)
		}
		return nil, diags
	}
	if err != nil {
		diags.AddError("Invalid cluster", err.Error())
		return nil, diags
	}
	return full, diags
}

// specSections maps the spec's block names to liftoff_cluster's attributes.
var specSections = map[string]string{
	"pki": "pki", "images": "images", "kubelet": "kubelet", "etcd": "etcd", "cni_plugins": "cni_plugins",
	"controllers": "controller_defaults", "workers": "worker_defaults", "etcd_snapshots": "etcd_snapshots",
	"etcd_restore": "etcd_restore", "machine_secrets": "machine_secrets",
}

// attributePath turns a problem's typed spec path (cluster pod_cidr, pki extra_sans [1], worker
// "node4" labels ["zone"], bootstrap "boot" ip, worker_pool "general" size, platform "matchbox"
// install_disk) into the path of the attribute the user wrote it in.
func attributePath(p spec.Problem) path.Path {
	steps := p.Path.Steps()
	if len(steps) == 0 || steps[0].Kind != spec.StepName {
		return path.Empty()
	}
	section, rest := steps[0].Name, steps[1:]
	labelled := len(rest) > 0 && rest[0].Kind == spec.StepLabel
	switch {
	case section == "cluster" && len(rest) == 0:
		// The cluster as a whole: its name.
		return path.Root("name")
	case section == "cluster":
		return follow(path.Empty(), rest)
	case section == spec.RoleBootstrap:
		// The one bootstrap machine is an object whose name is an attribute, not a key.
		if labelled {
			rest = rest[1:]
		}
		return follow(path.Root("bootstrap"), rest)
	case section == spec.RoleController || section == spec.RoleWorker || section == "worker_pool":
		root := path.Root(section + "s")
		if !labelled {
			return root
		}
		return follow(root.AtMapKey(rest[0].Name), rest[1:])
	case section == "platform":
		root := path.Root("platform")
		if !labelled {
			return root
		}
		return follow(root.AtName(rest[0].Name), rest[1:])
	case section == "pki" && len(rest) == 1 && rest[0].Name == "renew_before":
		return path.Root("renew_before")
	}
	if attr, ok := specSections[section]; ok {
		return follow(path.Root(attr), rest)
	}
	return path.Empty()
}

// shownPath shortens p to what terraform can find in a configuration: it locates a top-level
// argument and one element of it (a list item or map entry), but not an attribute inside a nested
// object, for which it would point at the resource block instead. The detail still names the field.
func shownPath(p path.Path) path.Path {
	steps := p.Steps()
	if len(steps) < 2 {
		return p
	}
	short := path.Root(string(steps[0].(path.PathStepAttributeName)))
	switch s := steps[1].(type) {
	case path.PathStepElementKeyString:
		return short.AtMapKey(string(s))
	case path.PathStepElementKeyInt:
		return short.AtListIndex(int(s))
	}
	return short
}

// follow appends typed steps to p: names as attributes, keys as map keys, indexes as list indexes.
func follow(p path.Path, steps []spec.Step) path.Path {
	for _, s := range steps {
		switch s.Kind {
		case spec.StepName, spec.StepLabel:
			if len(p.Steps()) == 0 {
				p = path.Root(s.Name)
			} else {
				p = p.AtName(s.Name)
			}
		case spec.StepKey:
			p = p.AtMapKey(s.Name)
		case spec.StepIndex:
			p = p.AtListIndex(s.Index)
		}
	}
	return p
}
