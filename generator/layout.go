package generator

import "github.com/liftoff-k8s/liftoff/spec"

// Where things live on a machine. Ignition configs, static pods, systemd units and the harness all
// use these paths, so they are written once here.
const (
	HostKubernetesDir         = "/etc/kubernetes"
	HostPKIDir                = "/etc/kubernetes/pki"
	HostStaticPodDir          = "/etc/kubernetes/manifests"
	HostBootstrapPodDir       = "/etc/kubernetes/bootstrap-manifests"
	HostAuthnConfig           = "/etc/kubernetes/authentication.yaml"
	HostAuditPolicy           = "/etc/kubernetes/audit-policy.yaml"
	HostAuditLogDir           = "/var/log/kubernetes/audit"
	HostAdmissionConfig       = "/etc/kubernetes/admission.yaml"
	HostEncryptionConfig      = "/etc/kubernetes/encryption.yaml"
	HostAdminConf             = "/etc/kubernetes/admin.conf"
	HostControllerManagerConf = "/etc/kubernetes/controller-manager.conf"
	HostSchedulerConf         = "/etc/kubernetes/scheduler.conf"
	HostBootstrapKubeletConf  = "/etc/kubernetes/bootstrap-kubelet.conf"
	HostKubeletDir            = "/var/lib/kubelet"
	HostKubeletConfig         = "/var/lib/kubelet/config.yaml"
	// HostKubeletConfigDir holds drop-ins over HostKubeletConfig, applied in the order of their names.
	HostKubeletConfigDir = "/etc/kubernetes/kubelet.conf.d"
	// HostKubeletAddressConfig is the drop-in with the machine's own address.
	HostKubeletAddressConfig = HostKubeletConfigDir + "/10-address.conf"
	HostKubeletKubeconfig    = "/var/lib/kubelet/kubeconfig"
	HostKubeletPKIDir        = "/var/lib/kubelet/pki"
	HostEtcdDataDir          = "/var/lib/etcd"
	HostCheckpointDir        = "/var/lib/liftoff/checkpoints"
	HostEtcdConfig           = "/etc/etcd/etcd.yaml"
	HostEtcdMemberPKIDir     = "/etc/etcd/pki"
	HostBinDir               = "/opt/bin"
	HostFetchScript          = "/opt/liftoff/bin/liftoff-fetch"
	HostIdentityScript       = "/opt/liftoff/bin/liftoff-node-identity"
	HostBootstrapCleanup     = "/opt/liftoff/bin/liftoff-remove-bootstrap-kubeconfig"
	HostSecretsFetchScript   = "/opt/liftoff/bin/liftoff-fetch-secrets"
	HostSecretsFetched       = "/var/lib/liftoff/secrets-fetched"
	HostIdentityEnv          = "/run/liftoff/node.env"
	HostCNIConfDir           = "/etc/cni/net.d"
	HostCNIBinDir            = "/opt/cni/bin"
	HostEtcdSnapshotDir      = spec.EtcdSnapshotDir
	HostEtcdSnapshotScript   = "/opt/liftoff/bin/liftoff-etcd-snapshot"
	ContainerdSocket         = "unix:///run/containerd/containerd.sock"
)

// etcd runs as a user of its own, which owns its data directory, its member's certificates and
// keys (under HostEtcdMemberPKIDir, apart from the root-only HostPKIDir) and the configuration
// it starts with. The uid and gid are those Flatcar Container Linux gives etcd, on every OS, so
// that a container running etcd as that user finds its files the same.
const (
	EtcdUser = "etcd"
	EtcdUID  = 232
)

// Files of the cluster PKI, the same relative path under the output directory's pki/ and under
// HostPKIDir on a machine.
const (
	CACert                = "ca.crt"
	CAKey                 = "ca.key"
	FrontProxyCACert      = "front-proxy-ca.crt"
	FrontProxyCAKey       = "front-proxy-ca.key"
	ServiceAccountKey     = "sa.key"
	ServiceAccountPub     = "sa.pub"
	APIServerCert         = "apiserver.crt"
	APIServerKey          = "apiserver.key"
	APIServerKubeletCert  = "apiserver-kubelet-client.crt"
	APIServerKubeletKey   = "apiserver-kubelet-client.key"
	APIServerEtcdCert     = "apiserver-etcd-client.crt"
	APIServerEtcdKey      = "apiserver-etcd-client.key"
	FrontProxyClientCert  = "front-proxy-client.crt"
	FrontProxyClientKey   = "front-proxy-client.key"
	AdminCert             = "admin.crt"
	AdminKey              = "admin.key"
	ControllerManagerCert = "controller-manager.crt"
	ControllerManagerKey  = "controller-manager.key"
	SchedulerCert         = "scheduler.crt"
	SchedulerKey          = "scheduler.key"
	EtcdCACert            = "etcd/ca.crt"
	EtcdCAKey             = "etcd/ca.key"
	EtcdServerCert        = "etcd/server.crt" // on a machine; per member under pki/etcd/<node>/ in the output
	EtcdServerKey         = "etcd/server.key"
	EtcdPeerCert          = "etcd/peer.crt"
	EtcdPeerKey           = "etcd/peer.key"
)

// Identities in client certificates, which the rendered RBAC refers to.
const (
	// UserAdminGroup is bound to cluster-admin through RBAC (liftoff:cluster-admins), so the admin
	// credential's rights can be revoked and every request of it is authorized and audited.
	UserAdminGroup = "liftoff:cluster-admins"
	UserAdmin      = "liftoff-admin"
	// UserSuperAdmin is the break-glass credential (auth/super-admin.conf): system:masters, which
	// no RBAC rule can take away. It stays in the output directory: no machine receives it.
	// `liftoff bootstrap` uses it once, to create the admins' binding before anything else.
	UserSuperAdmin        = "liftoff-super-admin"
	UserSuperAdminGroup   = "system:masters"
	UserControllerManager = "system:kube-controller-manager"
	UserScheduler         = "system:kube-scheduler"
	UserAPIServerKubelet  = "kube-apiserver-kubelet-client"
	UserAPIServerEtcd     = "kube-apiserver-etcd-client"
	UserFrontProxyClient  = "front-proxy-client"
)

// KubeletServingApprover names the kubelet-serving-approver's Deployment, ServiceAccount and the
// Lease its replicas elect a leader with; the liftoff command's defaults use it too.
const KubeletServingApprover = "liftoff-kubelet-serving-approver"

// HostAgent names the DaemonSet and ServiceAccount of `liftoff agent`, which acts on a self-hosted
// cluster's controllers where only the host can: it removes the bootstrap control plane's static
// pods when the pivot asks.
const HostAgent = "liftoff-agent"

// Checkpointer names the static pod of `liftoff checkpointer` on a self-hosted cluster's controllers.
const Checkpointer = "liftoff-checkpointer"

// PivotRecord is the ConfigMap in kube-system where the pivot records its stages, says when the
// cluster is bootstrapped, and asks the host agents to act.
const PivotRecord = "liftoff-bootstrap"

// BootstrapPodPrefix begins the name of every bootstrap control-plane pod and of its manifest file;
// the host agent removes only files named so.
const BootstrapPodPrefix = "bootstrap-"

// TLSCipherSuites are the only TLS 1.2 cipher suites the control plane, the kubelets and etcd
// accept (TLS 1.3's are not configurable and all strong): forward-secret AEAD suites for ECDSA and
// RSA keys, as the CIS Kubernetes Benchmark recommends. TLS 1.2 is the oldest version any accepts.
var TLSCipherSuites = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

// Ports.
const (
	EtcdClientPort        = 2379
	EtcdPeerPort          = 2380
	KubeletPort           = 10250
	ControllerManagerPort = 10257
	SchedulerPort         = 10259
)

// Output directory paths.
const (
	OutPKIDir       = "pki"
	OutAuthDir      = "auth"
	OutManifestDir  = "manifests"
	OutStaticPodDir = "static-pods"
	OutBootstrapDir = "bootstrap-manifests"
	OutIgnitionDir  = "ignition"
	// OutPoolIgnitionDir holds one Ignition config per worker pool.
	OutPoolIgnitionDir = "ignition/pools"
	// OutRoleIgnitionDir holds the roles' shared Ignition configs, when machines merge them.
	OutRoleIgnitionDir = "ignition/roles"
)

// CheckpointAnnotation marks self-hosted pods that the checkpointer saves as local static pods.
const CheckpointAnnotation = "checkpointer.liftoff.dev/checkpoint"
