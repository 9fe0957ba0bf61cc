package generator

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Cluster is the validated spec with everything derived from it that templates need. Templates
// read only this (and Machine), never the raw spec.
type Cluster struct {
	Spec *spec.Cluster

	Name              string
	KubernetesVersion string
	SelfHosted        bool
	APIServerURL      string
	APIServerHost     string
	APIServerPort     int
	PodCIDR           string
	ServiceCIDR       string
	ClusterDomain     string
	// APIServiceIP is the first address of the service CIDR (the kubernetes Service).
	APIServiceIP string
	// DNSServiceIP is the tenth address of the service CIDR (CoreDNS).
	DNSServiceIP string
	Images       spec.Images
	Networking   string

	// EtcdServers is the apiserver's --etcd-servers value; EtcdInitialCluster is etcd's --initial-cluster.
	EtcdServers        string
	EtcdInitialCluster string
	// BootstrapEtcdServers is the bootstrap apiserver's --etcd-servers: with a bootstrap machine,
	// its temporary member first, then the controllers'.
	BootstrapEtcdServers string

	// Bootstrap is the bootstrap machine, or nil: the bootstrap control plane then runs on the
	// first controller.
	Bootstrap   *Machine
	Controllers []Machine
	Workers     []Machine
	// Pools are the worker pools, one Machine each with no address: its machines find theirs at boot.
	Pools []Machine

	// BootstrapTokens are the tokens the cluster accepts: every machine's that has not expired and
	// every worker pool's, by owner.
	BootstrapTokens []BootstrapToken
	// tokens are every machine's and pool's token by owner, expired or not, for their configs.
	tokens map[string]BootstrapToken
	// CACertPEM is the cluster CA certificate, for kubeconfigs and ConfigMaps.
	CACertPEM string
	// EncryptionKey is the base64 key kube-apiserver seals Secrets with in etcd.
	EncryptionKey string
}

// Machine is one machine as templates see it.
type Machine struct {
	Name   string
	Role   string
	IP     string
	MAC    string
	Domain string
	// Labels and Taints merge the role's defaults, liftoff's role label and the machine's own.
	Labels map[string]string
	Taints []string
	// APIServerURL is the URL this machine's control-plane clients use: its own apiserver on a controller.
	APIServerURL string
}

// Role labels and taints liftoff puts on machines.
const (
	LabelController = "node.kubernetes.io/controller"
	LabelWorker     = "node.kubernetes.io/worker"
	LabelBootstrap  = "node.kubernetes.io/bootstrap"
	TaintController = "node-role.kubernetes.io/controller:NoSchedule"
	TaintBootstrap  = "node-role.kubernetes.io/bootstrap:NoSchedule"
)

// Placement labels: what liftoff's own workloads that hold control-plane credentials (the
// self-hosted control plane, the liftoff agent, the kubelet-serving approver) are placed by. A
// kubelet may set the role labels above on its own Node, so any machine could draw those pods to
// itself; NodeRestriction forbids a kubelet to set a node-restriction.kubernetes.io/ label, so only
// `liftoff bootstrap`, with the admin's credential, puts these on the machines the render names.
const (
	PlacementController = "node-restriction.kubernetes.io/liftoff-controller"
	PlacementBootstrap  = "node-restriction.kubernetes.io/liftoff-bootstrap"
)

func newCluster(c *spec.Cluster) (*Cluster, error) {
	u, err := url.Parse(c.APIServer)
	if err != nil {
		return nil, err
	}
	port, _ := strconv.Atoi(u.Port())
	svc := netip.MustParsePrefix(c.ServiceCIDR)
	first := svc.Addr().Next()
	dns := first
	for range 9 {
		dns = dns.Next()
	}
	d := &Cluster{
		Spec:              c,
		Name:              c.Name,
		KubernetesVersion: c.KubernetesVersion,
		SelfHosted:        c.ControlPlane == spec.ControlPlaneSelfHosted,
		APIServerURL:      strings.TrimSuffix(c.APIServer, "/"),
		APIServerHost:     u.Hostname(),
		APIServerPort:     port,
		PodCIDR:           c.PodCIDR,
		ServiceCIDR:       c.ServiceCIDR,
		ClusterDomain:     c.ClusterDomain,
		APIServiceIP:      first.String(),
		DNSServiceIP:      dns.String(),
		Images:            *c.Images,
		Networking:        c.Networking,
	}
	var servers, initial, bootstrapServers []string
	if c.Bootstrap != nil {
		m := d.machine(*c.Bootstrap, nil)
		m.APIServerURL = fmt.Sprintf("https://%s:%d", m.IP, port)
		d.Bootstrap = &m
		bootstrapServers = append(bootstrapServers, fmt.Sprintf("https://%s:%d", m.IP, EtcdClientPort))
		initial = append(initial, fmt.Sprintf("%s=https://%s:%d", m.Name, m.IP, EtcdPeerPort))
	}
	for _, n := range c.Controllers {
		m := d.machine(n, c.ControllerDefaults)
		m.APIServerURL = fmt.Sprintf("https://%s:%d", n.IP, port)
		d.Controllers = append(d.Controllers, m)
		servers = append(servers, fmt.Sprintf("https://%s:%d", n.IP, EtcdClientPort))
		initial = append(initial, fmt.Sprintf("%s=https://%s:%d", n.Name, n.IP, EtcdPeerPort))
	}
	for _, n := range c.Workers {
		d.Workers = append(d.Workers, d.machine(n, c.WorkerDefaults))
	}
	for _, p := range c.WorkerPools {
		d.Pools = append(d.Pools, d.machine(spec.Node{Name: p.Name, Role: spec.RoleWorker, Labels: p.Labels, Taints: p.Taints}, c.WorkerDefaults))
	}
	d.EtcdServers = strings.Join(servers, ",")
	d.EtcdInitialCluster = strings.Join(initial, ",")
	d.BootstrapEtcdServers = strings.Join(append(bootstrapServers, servers...), ",")
	return d, nil
}

// EtcdMembers are the machines that run etcd and an apiserver: the bootstrap machine (if any) and
// the controllers.
func (d *Cluster) EtcdMembers() []Machine {
	if d.Bootstrap == nil {
		return d.Controllers
	}
	return append([]Machine{*d.Bootstrap}, d.Controllers...)
}

// BootstrapHost is the machine the bootstrap control plane of a self-hosted cluster runs on.
func (d *Cluster) BootstrapHost() Machine {
	if d.Bootstrap != nil {
		return *d.Bootstrap
	}
	return d.Controllers[0]
}

func (d *Cluster) machine(n spec.Node, role *spec.RoleDefaults) Machine {
	m := Machine{Name: n.Name, Role: n.Role, IP: n.IP, MAC: n.MAC, Domain: n.Domain, APIServerURL: d.APIServerURL, Labels: map[string]string{}}
	switch n.Role {
	case spec.RoleController:
		m.Labels[LabelController] = "true"
		m.Taints = append(m.Taints, TaintController)
	case spec.RoleBootstrap:
		m.Labels[LabelBootstrap] = "true"
		m.Taints = append(m.Taints, TaintBootstrap)
	default:
		m.Labels[LabelWorker] = "true"
	}
	if role == nil {
		role = &spec.RoleDefaults{}
	}
	for k, v := range role.Labels {
		m.Labels[k] = v
	}
	for k, v := range n.Labels {
		m.Labels[k] = v
	}
	m.Taints = appendUnique(appendUnique(m.Taints, role.Taints...), n.Taints...)
	return m
}

func appendUnique(list []string, more ...string) []string {
	for _, s := range more {
		found := false
		for _, have := range list {
			if have == s {
				found = true
				break
			}
		}
		if !found {
			list = append(list, s)
		}
	}
	return list
}

// NodeLabels is the kubelet's --node-labels value: sorted key=value pairs.
func (m Machine) NodeLabels() string {
	keys := make([]string, 0, len(m.Labels))
	for k := range m.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m.Labels[k]
	}
	return strings.Join(parts, ",")
}
