package generator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"text/template"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/spec"
	"github.com/liftoff-k8s/liftoff/templates"
)

// NodeBootstrapGroup is the extra group of the kubelet bootstrap token, so RBAC and audit logs can tell
// liftoff's token from others.
const NodeBootstrapGroup = "system:bootstrappers:liftoff:nodes"

// The control-plane components, by the name of their program.
const (
	componentAPIServer         = "kube-apiserver"
	componentControllerManager = "kube-controller-manager"
	componentScheduler         = "kube-scheduler"
)

var controlPlaneComponents = []string{componentAPIServer, componentControllerManager, componentScheduler}

// manifestTemplates are templates/manifests: cluster-wide manifests at the top, control-plane pods
// and the apiserver's configuration under control-plane/.
var manifestTemplates = func() *template.Template {
	t := template.New("manifests")
	t.Funcs(template.FuncMap{
		// include is template with a result, so a shared block can be indented where it is used.
		"include": func(name string, data any) (string, error) {
			var b strings.Builder
			err := t.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"indent": indent,
		// quote writes a JSON string, which YAML also reads as a string, whatever it holds.
		"quote":  jsonString,
		"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	})
	return template.Must(t.ParseFS(templates.FS, "manifests/*.tmpl", "manifests/control-plane/*.tmpl"))
}()

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// manifestLayout is what manifest templates need of layout.go: host paths and well-known names.
type manifestLayout struct {
	PKIDir, AuthnConfig, ControllerManagerConf, SchedulerConf   string
	AuditPolicy, AuditLogDir, AdmissionConfig, EncryptionConfig string
	CNIConfDir, CNIBinDir                                       string

	CACert, CAKey, FrontProxyCACert, ServiceAccountKey, ServiceAccountPub                      string
	APIServerCert, APIServerKey, APIServerKubeletCert, APIServerKubeletKey                     string
	APIServerEtcdCert, APIServerEtcdKey, FrontProxyClientCert, FrontProxyClientKey, EtcdCACert string

	ControllerManagerPort, SchedulerPort int

	LabelController, ControllerTaintKey, ControllerTaintEffect, CheckpointAnnotation string
	LabelBootstrap, BootstrapTaintKey, BootstrapTaintEffect                          string
	PlacementController, PlacementBootstrap                                          string
	UserAPIServerKubelet, UserFrontProxyClient, NodeBootstrapGroup, AdminGroup       string
	KubeletServingApprover, HostAgent, PivotRecord, StaticPodDir                     string
	Checkpointer, CheckpointDir, KubeletKubeconfig, KubeletPKIDir                    string
	RuntimeEndpoint, RuntimeSocketDir                                                string
	TLSCipherSuites                                                                  string
}

var hostLayout = func() manifestLayout {
	pki := func(name string) string { return path.Join(HostPKIDir, name) }
	key, effect, _ := strings.Cut(TaintController, ":")
	bkey, beffect, _ := strings.Cut(TaintBootstrap, ":")
	return manifestLayout{
		PKIDir: HostPKIDir, AuthnConfig: HostAuthnConfig,
		AuditPolicy: HostAuditPolicy, AuditLogDir: HostAuditLogDir,
		AdmissionConfig: HostAdmissionConfig, EncryptionConfig: HostEncryptionConfig,
		ControllerManagerConf: HostControllerManagerConf, SchedulerConf: HostSchedulerConf,
		CNIConfDir: HostCNIConfDir, CNIBinDir: HostCNIBinDir,

		CACert: pki(CACert), CAKey: pki(CAKey), FrontProxyCACert: pki(FrontProxyCACert),
		ServiceAccountKey: pki(ServiceAccountKey), ServiceAccountPub: pki(ServiceAccountPub),
		APIServerCert: pki(APIServerCert), APIServerKey: pki(APIServerKey),
		APIServerKubeletCert: pki(APIServerKubeletCert), APIServerKubeletKey: pki(APIServerKubeletKey),
		APIServerEtcdCert: pki(APIServerEtcdCert), APIServerEtcdKey: pki(APIServerEtcdKey),
		FrontProxyClientCert: pki(FrontProxyClientCert), FrontProxyClientKey: pki(FrontProxyClientKey),
		EtcdCACert: pki(EtcdCACert),

		ControllerManagerPort: ControllerManagerPort, SchedulerPort: SchedulerPort,

		LabelController: LabelController, ControllerTaintKey: key, ControllerTaintEffect: effect,
		LabelBootstrap: LabelBootstrap, BootstrapTaintKey: bkey, BootstrapTaintEffect: beffect,
		PlacementController: PlacementController, PlacementBootstrap: PlacementBootstrap,
		CheckpointAnnotation: CheckpointAnnotation,
		UserAPIServerKubelet: UserAPIServerKubelet, UserFrontProxyClient: UserFrontProxyClient,
		NodeBootstrapGroup: NodeBootstrapGroup, AdminGroup: UserAdminGroup, KubeletServingApprover: KubeletServingApprover,
		HostAgent: HostAgent, PivotRecord: PivotRecord, StaticPodDir: HostStaticPodDir,
		Checkpointer: Checkpointer, CheckpointDir: HostCheckpointDir,
		KubeletKubeconfig: HostKubeletKubeconfig, KubeletPKIDir: HostKubeletPKIDir,
		RuntimeEndpoint: ContainerdSocket, RuntimeSocketDir: path.Dir(strings.TrimPrefix(ContainerdSocket, "unix://")),
		TLSCipherSuites: strings.Join(TLSCipherSuites, ","),
	}
}()

// manifestData is what a manifest template sees: the cluster, the layout and, for control-plane
// pods, which component runs where.
type manifestData struct {
	*Cluster
	Layout manifestLayout
	// Component is the control-plane program a pod runs; PodName names a static pod.
	Component, PodName string
	// Machine is the controller a static pod runs on. Self-hosted workloads have none: the
	// scheduler places them and they learn their node's address from the downward API.
	Machine *Machine
}

// EtcdServers is the apiserver's --etcd-servers: the bootstrap apiserver's includes the bootstrap
// machine's temporary member; every other apiserver's only the controllers'.
func (m manifestData) EtcdServers() string {
	if m.PodName != "" && strings.HasPrefix(m.PodName, BootstrapPodPrefix) {
		return m.BootstrapEtcdServers
	}
	return m.Cluster.EtcdServers
}

// Address is what a control-plane component advertises and binds to. A self-hosted pod template
// serves every controller, so it names the address the kubelet fills in from status.hostIP.
func (m manifestData) Address() string {
	if m.Machine != nil {
		return m.Machine.IP
	}
	return "$(HOST_IP)"
}

func executeManifest(name string, data manifestData) ([]byte, error) {
	var b strings.Builder
	if err := manifestTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("manifest template %s: %w", name, err)
	}
	return []byte(strings.TrimSpace(b.String()) + "\n"), nil
}

// clusterManifest is one file of manifests/, applied to the cluster in the order of file names.
type clusterManifest struct {
	file     string
	template string
	// component is the control-plane program of a self-hosted workload.
	component string
	kind      Kind
	mode      fs.FileMode
	// only, when set, says whether the cluster has this file.
	only func(d *Cluster) bool
}

func selfHostedOnly(d *Cluster) bool { return d.SelfHosted }

// clusterManifests puts access before the workloads that need it, and the network before the
// add-ons that run on it.
var clusterManifests = []clusterManifest{
	{file: "00-bootstrap-token.yaml", kind: KindBootstrapToken, mode: 0o600},
	{file: "01-cluster-admins-rbac.yaml"},
	{file: "01-tls-bootstrap-rbac.yaml"},
	{file: "02-cluster-info.yaml"},
	{file: "10-kube-apiserver.yaml", template: "kube-apiserver-daemonset.yaml.tmpl", component: componentAPIServer, only: selfHostedOnly},
	{file: "11-kube-controller-manager.yaml", template: "control-plane-deployment.yaml.tmpl", component: componentControllerManager, only: selfHostedOnly},
	{file: "12-kube-scheduler.yaml", template: "control-plane-deployment.yaml.tmpl", component: componentScheduler, only: selfHostedOnly},
	{file: "15-liftoff-agent.yaml", only: selfHostedOnly},
	{file: "20-flannel.yaml", only: func(d *Cluster) bool { return d.Networking == "flannel" }},
	{file: "30-kube-proxy.yaml"},
	{file: "35-kubelet-serving-approver.yaml"},
	{file: "40-coredns.yaml"},
}

// renderManifests renders the cluster-wide manifests and the control plane's pods: static pods on
// every controller, or, when self-hosted, the temporary control plane the pivot starts from.
func renderManifests(d *Cluster) ([]Asset, error) {
	if d.tokens == nil {
		return nil, fmt.Errorf("manifests: the bootstrap tokens are not set")
	}
	var out []Asset
	for _, m := range clusterManifests {
		if m.only != nil && !m.only(d) {
			continue
		}
		tmpl := m.template
		if tmpl == "" {
			tmpl = m.file + ".tmpl"
		}
		data, err := executeManifest(tmpl, manifestData{Cluster: d, Layout: hostLayout, Component: m.component})
		if err != nil {
			return nil, err
		}
		kind, mode := m.kind, m.mode
		if kind == "" {
			kind, mode = KindManifest, 0o644
		}
		out = append(out, Asset{Path: path.Join(OutManifestDir, m.file), Kind: kind, Mode: mode, Data: data})
	}
	if !d.SelfHosted {
		for _, c := range d.Controllers {
			pods, err := staticPods(d, c)
			if err != nil {
				return nil, err
			}
			out = append(out, pods...)
		}
		return out, nil
	}
	pods, err := bootstrapControlPlane(d)
	if err != nil {
		return nil, err
	}
	out = append(out, pods...)
	for _, c := range d.Controllers {
		pod, err := checkpointerPod(d, c)
		if err != nil {
			return nil, err
		}
		out = append(out, pod)
	}
	return out, nil
}

// staticPods are the control-plane pods of controller m in a static control plane, at
// static-pods/<node>/<component>.yaml. Ignition places the same bytes in HostStaticPodDir.
func staticPods(d *Cluster, m Machine) ([]Asset, error) {
	out := make([]Asset, 0, len(controlPlaneComponents))
	for _, c := range controlPlaneComponents {
		data, err := executeManifest("static-pod.yaml.tmpl", manifestData{Cluster: d, Layout: hostLayout, Component: c, PodName: c, Machine: &m})
		if err != nil {
			return nil, fmt.Errorf("static pod %s of %s: %w", c, m.Name, err)
		}
		out = append(out, Asset{Path: path.Join(OutStaticPodDir, m.Name, c+".yaml"), Kind: KindStaticPod, Node: m.Name, Role: "controller", Mode: 0o644, Data: data})
	}
	return out, nil
}

// bootstrapControlPlane is the control plane a self-hosted cluster starts from: static pods on the
// first controller against the etcd on the controllers, which serve until the self-hosted
// control plane in manifests/ takes over.
func bootstrapControlPlane(d *Cluster) ([]Asset, error) {
	if len(d.Controllers) == 0 {
		return nil, fmt.Errorf("manifests: a self-hosted control plane needs a controller to start on")
	}
	first := d.BootstrapHost()
	out := make([]Asset, 0, len(controlPlaneComponents))
	for _, c := range controlPlaneComponents {
		name := BootstrapPodPrefix + c
		data, err := executeManifest("static-pod.yaml.tmpl", manifestData{Cluster: d, Layout: hostLayout, Component: c, PodName: name, Machine: &first})
		if err != nil {
			return nil, fmt.Errorf("bootstrap pod %s: %w", c, err)
		}
		out = append(out, Asset{Path: path.Join(OutBootstrapDir, name+".yaml"), Kind: KindStaticPod, Node: first.Name, Role: spec.RoleBootstrap, Mode: 0o644, Data: data})
	}
	return out, nil
}

// checkpointerPod is the static pod of `liftoff checkpointer` on controller m of a self-hosted
// cluster, at static-pods/<node>/liftoff-checkpointer.yaml.
func checkpointerPod(d *Cluster, m Machine) (Asset, error) {
	data, err := executeManifest("checkpointer.yaml.tmpl", manifestData{Cluster: d, Layout: hostLayout, Machine: &m})
	if err != nil {
		return Asset{}, fmt.Errorf("checkpointer of %s: %w", m.Name, err)
	}
	return Asset{Path: path.Join(OutStaticPodDir, m.Name, Checkpointer+".yaml"), Kind: KindStaticPod, Node: m.Name, Role: "controller", Mode: 0o644, Data: data}, nil
}

// apiServerFiles are the configuration files every kube-apiserver reads from its controller's
// disk, all readable by root only: who may call anonymously, what is audited, the Pod Security
// defaults, and the key Secrets are encrypted with.
func apiServerFiles(d *Cluster) ([]hostFile, error) {
	var files []hostFile
	for _, f := range []struct{ host, template string }{
		{HostAuthnConfig, "authentication.yaml.tmpl"},
		{HostAuditPolicy, "audit-policy.yaml.tmpl"},
		{HostAdmissionConfig, "admission.yaml.tmpl"},
	} {
		data, err := executeManifest(f.template, manifestData{Cluster: d, Layout: hostLayout})
		if err != nil {
			return nil, err
		}
		files = append(files, hostFile{Path: f.host, Mode: 0o600, Text: string(data)})
	}
	enc, err := encryptionConfig(d.EncryptionKey)
	if err != nil {
		return nil, err
	}
	return append(files, hostFile{Path: HostEncryptionConfig, Mode: 0o600, Text: string(enc), Secret: true}), nil
}

// EncryptionKeyName names the cluster's key in the EncryptionConfiguration; etcd values sealed
// with it begin with EncryptedSecretPrefix.
const EncryptionKeyName = "liftoff-1"

// EncryptedSecretPrefix begins every Secret's value in etcd once kube-apiserver has sealed it.
const EncryptedSecretPrefix = "k8s:enc:secretbox:v1:" + EncryptionKeyName + ":"

// encryptionConfig is kube-apiserver's EncryptionConfiguration: Secrets are sealed with
// XSalsa20-Poly1305 (secretbox) under the cluster's key before they reach etcd. The identity
// provider reads what was written before encryption was on; such a Secret is sealed when next
// written.
func encryptionConfig(key string) ([]byte, error) {
	cfg := apiserverv1.EncryptionConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration"},
		Resources: []apiserverv1.ResourceConfiguration{{
			Resources: []string{"secrets"},
			Providers: []apiserverv1.ProviderConfiguration{
				{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: []apiserverv1.Key{{Name: EncryptionKeyName, Secret: key}}}},
				{Identity: &apiserverv1.IdentityConfiguration{}},
			},
		}},
	}
	return yaml.Marshal(cfg)
}
