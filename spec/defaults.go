package spec

import (
	"net"
	"path"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/internal/versions"
)

// Defaults that work for a bare-metal cluster in the style of Typhoon.
const (
	DefaultPodCIDR       = "10.2.0.0/16"
	DefaultServiceCIDR   = "10.3.0.0/16"
	DefaultClusterDomain = "cluster.local"
	DefaultKeyAlgorithm  = "ecdsa-p256"
	DefaultCAValidity    = "87600h" // 10 years
	DefaultCertValidity  = "8760h"  // 1 year
	DefaultRenewBefore   = "720h"   // 30 days
	// DefaultBootstrapTokenTTL is kubeadm's: a day for the machines of a render to join.
	DefaultBootstrapTokenTTL = "24h"
	DefaultKubeletURL        = "https://dl.k8s.io/release/{version}/bin/linux/{arch}/kubelet"
	DefaultEtcdURL           = "https://github.com/etcd-io/etcd/releases/download/{version}/etcd-{version}-linux-{arch}.tar.gz"
	DefaultCNIPluginsURL     = "https://github.com/containernetworking/plugins/releases/download/{version}/cni-plugins-linux-{arch}-{version}.tgz"
)

// EtcdSnapshotDir is where a controller keeps the snapshots of its etcd member.
const EtcdSnapshotDir = "/var/lib/etcd-snapshots"

// Each controller snapshots its etcd member hourly and keeps a day of snapshots unless the spec says
// otherwise. Snapshots are no closer than MinEtcdSnapshotInterval: each one reads the whole database.
const (
	DefaultEtcdSnapshotInterval = "1h"
	DefaultEtcdSnapshotKeep     = 24
	MinEtcdSnapshotInterval     = 5 * time.Minute
)

// WithDefaults returns a copy of c with every unset setting filled in. Validate and the generator
// work on the result.
func WithDefaults(c *Cluster) *Cluster {
	out := *c
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&out.KubernetesVersion, versions.Kubernetes)
	def(&out.OS, OSFlatcar)
	def(&out.ControlPlane, ControlPlaneStatic)
	def(&out.PodCIDR, DefaultPodCIDR)
	def(&out.ServiceCIDR, DefaultServiceCIDR)
	def(&out.ClusterDomain, DefaultClusterDomain)
	def(&out.Networking, "flannel")
	def(&out.Arch, "amd64")

	pki := PKI{}
	if c.PKI != nil {
		pki = *c.PKI
	}
	def(&pki.KeyAlgorithm, DefaultKeyAlgorithm)
	def(&pki.CAValidity, DefaultCAValidity)
	def(&pki.CertValidity, DefaultCertValidity)
	def(&pki.RenewBefore, DefaultRenewBefore)
	def(&pki.BootstrapTokenTTL, DefaultBootstrapTokenTTL)
	out.PKI = &pki

	img := Images{}
	if c.Images != nil {
		img = *c.Images
	}
	k := out.KubernetesVersion
	def(&img.KubeAPIServer, "registry.k8s.io/kube-apiserver:"+k)
	def(&img.KubeControllerManager, "registry.k8s.io/kube-controller-manager:"+k)
	def(&img.KubeScheduler, "registry.k8s.io/kube-scheduler:"+k)
	def(&img.KubeProxy, "registry.k8s.io/kube-proxy:"+k)
	def(&img.CoreDNS, "registry.k8s.io/coredns/coredns:"+versions.CoreDNS)
	def(&img.Flannel, "ghcr.io/flannel-io/flannel:"+versions.Flannel)
	def(&img.FlannelCNIPlugin, "ghcr.io/flannel-io/flannel-cni-plugin:"+versions.FlannelCNIPlugin)
	def(&img.Pause, "registry.k8s.io/pause:"+versions.Pause)
	def(&img.Liftoff, "ghcr.io/liftoff-k8s/liftoff:"+versions.Liftoff)
	out.Images = &img

	out.Kubelet = program(c.Kubelet, k, DefaultKubeletURL)
	out.Etcd = program(c.Etcd, versions.Etcd, DefaultEtcdURL)
	out.CNIPlugins = program(c.CNIPlugins, versions.CNIPlugins, DefaultCNIPluginsURL)

	snap := EtcdSnapshots{}
	if c.EtcdSnapshots != nil {
		snap = *c.EtcdSnapshots
	}
	if snap.Enabled == nil {
		snap.Enabled = ptr(true)
	}
	def(&snap.Interval, DefaultEtcdSnapshotInterval)
	if snap.Keep == nil {
		snap.Keep = ptr(DefaultEtcdSnapshotKeep)
	}
	out.EtcdSnapshots = &snap

	out.ControllerDefaults = roleDefaults(c.ControllerDefaults)
	out.WorkerDefaults = roleDefaults(c.WorkerDefaults)

	if c.Bootstrap != nil {
		out.Bootstrap = &nodes([]Node{*c.Bootstrap}, RoleBootstrap)[0]
	}
	out.Controllers = nodes(c.Controllers, RoleController)
	out.Workers = nodes(c.Workers, RoleWorker)
	out.WorkerPools = make([]WorkerPool, len(c.WorkerPools))
	for i, p := range c.WorkerPools {
		if p.MaxSize == 0 {
			p.MaxSize = p.Size
		}
		out.WorkerPools[i] = p
	}
	return &out
}

func program(p *Program, version, url string) *Program {
	out := Program{}
	if p != nil {
		out = *p
	}
	if out.Delivery == "" {
		out.Delivery = DeliveryDownload
	}
	if out.Version == "" {
		out.Version = version
	}
	if out.URL == "" && out.Delivery == DeliveryDownload {
		out.URL = url
	}
	out.SHA512 = strings.ToLower(out.SHA512)
	return &out
}

func ptr[T any](v T) *T { return &v }

func roleDefaults(r *RoleDefaults) *RoleDefaults {
	if r == nil {
		return &RoleDefaults{}
	}
	out := *r
	return &out
}

func nodes(in []Node, role string) []Node {
	out := make([]Node, len(in))
	for i, n := range in {
		n.Role = role
		n.MAC = normalMAC(n.MAC)
		out[i] = n
	}
	return out
}

// normalMAC writes a MAC address the way matchbox, Vagrant and the renders use it, lowercase with
// colons, whichever way it was pasted (0C-C4-7A-10-20-32, 0cc4.7a10.2032, 0c:c4:7a:10:20:32).
// What is no MAC is returned lowercased, for validation to report.
func normalMAC(s string) string {
	if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
		return hw.String()
	}
	return strings.ToLower(s)
}

// Expand replaces {version} and {arch} in a program URL.
func (p *Program) Expand(arch string) string {
	return strings.NewReplacer("{version}", p.Version, "{arch}", arch).Replace(p.URL)
}

// defaultDownloads are liftoff's default downloads, by spec block, with the kind of checksum their
// projects publish with each release: a sha512 file beside the download, or a SHA256SUMS list.
var defaultDownloads = map[string]struct{ url, kind string }{
	"kubelet":     {DefaultKubeletURL, "sha512"},
	"etcd":        {DefaultEtcdURL, "sha256sums"},
	"cni_plugins": {DefaultCNIPluginsURL, "sha512"},
}

// PublishedChecksum says where the project behind one of liftoff's default downloads publishes its
// checksum: kind "sha512" or "sha256sums" and that file's URL. ok is false when p (the spec's block
// named field) downloads from anywhere else; such a download must be pinned with sha512.
func PublishedChecksum(field string, p *Program, arch string) (kind, url string, ok bool) {
	d, found := defaultDownloads[field]
	if !found || p.URL != d.url {
		return "", "", false
	}
	u := p.Expand(arch)
	if d.kind == "sha256sums" {
		return d.kind, path.Dir(u) + "/SHA256SUMS", true
	}
	return d.kind, u + ".sha512", true
}
