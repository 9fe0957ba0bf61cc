// Package versions is the one place that pins the versions liftoff renders by default and the versions
// of the real programs its tests and demo build from the Go module proxy.
package versions

const (
	// Kubernetes is the default kubernetes_version of a spec and the version of the control-plane
	// programs the tests build.
	Kubernetes = "v1.35.4"
	// KubernetesStaging is the version of the k8s.io staging modules that match Kubernetes.
	KubernetesStaging = "v0.35.4"
	// Etcd is the etcd release rendered onto controllers and built for tests.
	Etcd = "v3.6.5"
	// Ignition is the Ignition release whose parser checks rendered configs and whose binary applies them in tests.
	Ignition = "v2.26.0"
	// Matchbox is the matchbox release that serves bare-metal output in tests.
	Matchbox = "v0.11.0"
	// MatchboxProvider is the terraform-provider-matchbox release used by the bare-metal example's acceptance test.
	MatchboxProvider = "v0.5.4"
	// Terraform is the terraform CLI version the provider's acceptance tests expect on PATH.
	Terraform = "1.11.4"
	// ButaneFlatcar and ButaneFCOS are the Butane spec versions that translate to Ignition 3.4.0.
	ButaneFlatcar = "1.1.0"
	ButaneFCOS    = "1.5.0"
	// IgnitionSpec is the Ignition config version every rendered config has.
	IgnitionSpec = "3.4.0"
	// CoreDNS, Flannel and Pause are the add-on images' default versions.
	CoreDNS          = "v1.12.4"
	Flannel          = "v0.27.4"
	FlannelCNIPlugin = "v1.8.0-flannel1"
	Pause            = "3.10.1"
	// CNIPlugins is the containernetworking/plugins release installed on every machine.
	CNIPlugins = "v1.8.0"
	// FlannelCNIPluginSource is the containernetworking/plugins release whose plugins/meta/flannel
	// the tests build as the flannel CNI plugin: flannel-io/cni-plugin, where the plugin lives now,
	// is not a module the Go proxy serves, and this is the same plugin before it moved.
	FlannelCNIPluginSource = "v0.9.1"
	// KubeBench is the kube-bench release, with the CIS Kubernetes Benchmark definitions it ships,
	// that the tests run against a local cluster.
	KubeBench = "v0.14.0"
)

// Liftoff is liftoff's own release version, the tag of its image.
const Liftoff = "v0.1.0"
