package generator

import (
	"net"
	"path"
	"strings"

	"github.com/liftoff-k8s/liftoff/generator/pki"
)

// The cluster's PKI is the table below, in the manner of kubeadm's certificate list: every key
// pair, who signs it, what its certificate says, which machines receive its files and where, and
// the kubeconfig made of it. The keyring issues from it, machines' Ignition configs and the
// kubeconfigs place it, and `liftoff certs` describes it; nothing else spells out the file set.

// receivers are the machines that get a file of the PKI.
type receivers int

const (
	// outputOnly: the file stays in the output directory; no machine gets it.
	outputOnly receivers = iota
	// everyMachine: workers too.
	everyMachine
	// controlPlane: the machines that run etcd and an apiserver, controllers and the bootstrap
	// machine.
	controlPlane
)

func (r receivers) String() string {
	switch r {
	case everyMachine:
		return "every machine"
	case controlPlane:
		return "controllers"
	}
	return "output only"
}

// hostCopy is one of a credential's files on the machines that receive it.
type hostCopy struct {
	ext   string // ".crt", ".key" or ".pub"
	on    receivers
	path  string // on the machine
	owner int    // uid and gid; 0 is root
}

// credential is one key pair of the cluster: a CA, a certificate one signs, or the
// service-account key pair.
type credential struct {
	// name is its path under pki/ without the extension. For a member's credential, memberName
	// stands for the etcd member's machine name.
	name string
	// purpose says what it is for, for people.
	purpose string
	// ca names the CA that signs it; a CA (and the service-account key pair) has none.
	ca string
	// template is what its certificate says; of a CA's, only the common name counts.
	template func(d *Cluster, m Machine) pki.Template
	// member: there is one for each etcd member, and it goes to that machine alone.
	member bool
	// keyOnly is a key pair without a certificate: a private key (.key) and its public key (.pub).
	keyOnly bool
	// copies are its files on machines, in the order they are written to a machine's config.
	copies []hostCopy
	// kubeconfig, when set, is the kubeconfig made of it, under auth/ against the API's address.
	kubeconfig string
	// hostKubeconfig, when set, is where control-plane machines keep that kubeconfig, against
	// their own apiserver.
	hostKubeconfig string
}

const memberName = "{member}"

// base is the credential's path under pki/, without extension, for member m.
func (c credential) base(m string) string { return strings.ReplaceAll(c.name, memberName, m) }

func (c credential) isCA() bool { return c.ca == "" && !c.keyOnly }

func onHost(ext string, on receivers, name string) hostCopy {
	return hostCopy{ext: ext, on: on, path: path.Join(HostPKIDir, name)}
}

func forEtcd(ext, name string) hostCopy {
	return hostCopy{ext: ext, on: controlPlane, path: etcdMemberFile(name), owner: EtcdUID}
}

func named(cn string) func(*Cluster, Machine) pki.Template {
	return func(d *Cluster, _ Machine) pki.Template {
		return pki.Template{CommonName: "liftoff " + d.Name + " " + cn}
	}
}

func clientOf(cn string, org ...string) func(*Cluster, Machine) pki.Template {
	return func(*Cluster, Machine) pki.Template {
		return pki.Template{CommonName: cn, Organization: org, Usage: pki.UsageClient}
	}
}

// etcdMemberTemplate is an etcd member's server and peer certificate. Server certificates may also
// authenticate as clients: etcd's gRPC gateway dials its own client port with the member's server
// certificate.
func etcdMemberTemplate(_ *Cluster, m Machine) pki.Template {
	t := pki.Template{CommonName: m.Name, IPs: []net.IP{net.ParseIP(m.IP)}, Usage: pki.UsagePeer}
	if m.Domain != "" {
		t.DNSNames = []string{m.Domain}
	}
	return t
}

// credentials is the cluster's PKI, in the order its files are written to a machine's config.
var credentials = []credential{
	{name: "ca", purpose: "cluster CA: client certificates, kubelets, serving certificates",
		template: named("cluster CA"),
		copies:   []hostCopy{onHost(".crt", everyMachine, CACert), onHost(".key", controlPlane, CAKey)}},
	{name: "front-proxy-ca", purpose: "CA of the aggregation layer's front proxy",
		template: named("front-proxy CA"),
		copies:   []hostCopy{onHost(".crt", controlPlane, FrontProxyCACert)}},
	{name: "sa", purpose: "signs and verifies service-account tokens", keyOnly: true,
		copies: []hostCopy{onHost(".key", controlPlane, ServiceAccountKey), onHost(".pub", controlPlane, ServiceAccountPub)}},
	{name: "apiserver-kubelet-client", purpose: "kube-apiserver to kubelets", ca: "ca",
		template: clientOf(UserAPIServerKubelet),
		copies:   []hostCopy{onHost(".crt", controlPlane, APIServerKubeletCert), onHost(".key", controlPlane, APIServerKubeletKey)}},
	{name: "apiserver-etcd-client", purpose: "kube-apiserver to etcd", ca: "etcd/ca",
		template: clientOf(UserAPIServerEtcd),
		copies:   []hostCopy{onHost(".crt", controlPlane, APIServerEtcdCert), onHost(".key", controlPlane, APIServerEtcdKey)}},
	{name: "front-proxy-client", purpose: "kube-apiserver to aggregated API servers", ca: "front-proxy-ca",
		template: clientOf(UserFrontProxyClient),
		copies:   []hostCopy{onHost(".crt", controlPlane, FrontProxyClientCert), onHost(".key", controlPlane, FrontProxyClientKey)}},
	{name: "etcd/ca", purpose: "etcd CA: members, peers and etcd clients",
		template: named("etcd CA"),
		copies:   []hostCopy{onHost(".crt", controlPlane, EtcdCACert), forEtcd(".crt", EtcdCACert)}},
	{name: "admin", purpose: "administrators, through RBAC", ca: "ca",
		template:   clientOf(UserAdmin, UserAdminGroup),
		kubeconfig: "admin.conf", hostKubeconfig: HostAdminConf},
	{name: "super-admin", purpose: "break-glass system:masters", ca: "ca",
		template:   clientOf(UserSuperAdmin, UserSuperAdminGroup),
		kubeconfig: "super-admin.conf"},
	{name: "controller-manager", purpose: "kube-controller-manager to kube-apiserver", ca: "ca",
		template:   clientOf(UserControllerManager),
		kubeconfig: "controller-manager.conf", hostKubeconfig: HostControllerManagerConf},
	{name: "scheduler", purpose: "kube-scheduler to kube-apiserver", ca: "ca",
		template:   clientOf(UserScheduler),
		kubeconfig: "scheduler.conf", hostKubeconfig: HostSchedulerConf},
	{name: "apiserver/" + memberName, purpose: "the member's kube-apiserver serving certificate", ca: "ca", member: true,
		template: apiServerTemplate,
		copies:   []hostCopy{onHost(".crt", controlPlane, APIServerCert), onHost(".key", controlPlane, APIServerKey)}},
	{name: "etcd/" + memberName + "/server", purpose: "the member's etcd, to clients", ca: "etcd/ca", member: true,
		template: etcdMemberTemplate,
		copies:   []hostCopy{forEtcd(".crt", EtcdServerCert), forEtcd(".key", EtcdServerKey)}},
	{name: "etcd/" + memberName + "/peer", purpose: "the member's etcd, to its peers", ca: "etcd/ca", member: true,
		template: etcdMemberTemplate,
		copies:   []hostCopy{forEtcd(".crt", EtcdPeerCert), forEtcd(".key", EtcdPeerKey)}},
}

// kubeconfigAt is the kubeconfig made of the credential (one of a client, not a member's), for the
// apiserver at server.
func (c credential) kubeconfigAt(d *Cluster, server string, p issued) ([]byte, error) {
	return kubeconfig(d.Name, server, []byte(d.CACertPEM), c.template(d, Machine{}).CommonName, p[c.name], "")
}

// APIServerCertBase is where machine's apiserver serving certificate and key are under pki/,
// without their extensions.
func APIServerCertBase(machine string) string {
	return credentialNamed("apiserver/" + memberName).base(machine)
}

func credentialNamed(name string) credential {
	for _, c := range credentials {
		if c.name == name {
			return c
		}
	}
	panic("no credential " + name)
}

// pkiFiles are the PKI's files that go to the machines of role on, in the table's order: with
// member set, that member's own; otherwise those all such machines share.
func (r *machineRenderer) pkiFiles(on receivers, member *Machine) []hostFile {
	var files []hostFile
	for _, c := range credentials {
		if c.member != (member != nil) {
			continue
		}
		base := c.name
		if member != nil {
			base = c.base(member.Name)
		}
		for _, h := range c.copies {
			if h.on != on {
				continue
			}
			mode := 0o644
			if h.ext == ".key" {
				mode = 0o600
			}
			files = append(files, hostFile{Path: h.path, Mode: mode, Owner: h.owner,
				Text: string(r.files[path.Join(OutPKIDir, base+h.ext)]), Secret: h.ext == ".key"})
		}
	}
	return files
}

// describeCert says what the certificate at an output path is for and which machines have it,
// from the table; a path the table does not know is described as "-".
func describeCert(p string) (purpose, on string) {
	rel, ok := strings.CutPrefix(strings.TrimSuffix(p, ".crt"), OutPKIDir+"/")
	if !ok {
		return "-", "-"
	}
	for _, c := range credentials {
		member, ok := c.memberOf(rel)
		if !ok {
			continue
		}
		on := outputOnly
		for _, h := range c.copies {
			if h.ext == ".crt" && h.on > on {
				on = h.on
			}
		}
		switch {
		case c.kubeconfig != "" && c.hostKubeconfig != "":
			return c.purpose, "controllers, in " + c.hostKubeconfig
		case c.kubeconfig != "":
			return c.purpose, "output only, in " + path.Join(OutAuthDir, c.kubeconfig)
		case c.member:
			return c.purpose, member
		}
		return c.purpose, on.String()
	}
	return "-", "-"
}

// memberOf reports whether rel (a path under pki/ without extension) is this credential's, and
// for a member's credential, whose.
func (c credential) memberOf(rel string) (string, bool) {
	if !c.member {
		return "", c.name == rel
	}
	before, after, _ := strings.Cut(c.name, memberName)
	m, ok := strings.CutPrefix(rel, before)
	if !ok {
		return "", false
	}
	m, ok = strings.CutSuffix(m, after)
	return m, ok && m != "" && !strings.Contains(m, "/")
}
