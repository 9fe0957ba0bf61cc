package generator

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	apiserverconfig "k8s.io/apiserver/pkg/apis/apiserver"
	apiserverinstall "k8s.io/apiserver/pkg/apis/apiserver/install"
	"k8s.io/apiserver/pkg/apis/audit"
	auditinstall "k8s.io/apiserver/pkg/apis/audit/install"
	auditvalidation "k8s.io/apiserver/pkg/apis/audit/validation"
	"k8s.io/client-go/kubernetes/scheme"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/spec"
)

// Fixed stand-ins for what a render would generate, so manifests can be checked without the PKI.
const (
	testTokenID     = "abcdef"
	testTokenSecret = "0123456789abcdef"
	testCACertPEM   = "-----BEGIN CERTIFICATE-----\nMIIBdGVzdCBDQQ==\n-----END CERTIFICATE-----\n"
)

var testTokenExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// manifestCluster is the example cluster, changed by edit before it is completed and validated.
func manifestCluster(t *testing.T, edit func(c *spec.Cluster)) *Cluster {
	t.Helper()
	c, diags := spec.ReadFile("../examples/demo/cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if edit != nil {
		edit(c)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newCluster(full)
	if err != nil {
		t.Fatal(err)
	}
	d.CACertPEM = testCACertPEM
	d.tokens = map[string]BootstrapToken{
		MachineTokenOwner("node1"): {Owner: MachineTokenOwner("node1"), ID: testTokenID, Secret: testTokenSecret, Expires: testTokenExpiry},
		PoolTokenOwner("pool-a"):   {Owner: PoolTokenOwner("pool-a"), ID: "pool01", Secret: "fedcba9876543210"},
	}
	d.BootstrapTokens = acceptedTokens(d.tokens, testTokenExpiry.Add(-time.Hour))
	return d
}

func withControlPlane(mode string) func(c *spec.Cluster) {
	return func(c *spec.Cluster) { c.ControlPlane = mode }
}

func mustRenderManifests(t *testing.T, d *Cluster) []Asset {
	t.Helper()
	as, err := renderManifests(d)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// strictDecoder decodes with Kubernetes' own API types and fails on any field they do not have.
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// manifestObject is one YAML document of an asset, decoded.
type manifestObject struct {
	asset string
	obj   runtime.Object
}

func yamlDocuments(t *testing.T, a Asset) [][]byte {
	t.Helper()
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(a.Data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", a.Path, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			t.Errorf("%s has an empty YAML document", a.Path)
			continue
		}
		docs = append(docs, doc)
	}
}

// decodeAll decodes every document of every asset strictly, failing the test on any error.
func decodeManifests(t *testing.T, assets []Asset) []manifestObject {
	t.Helper()
	var out []manifestObject
	for _, a := range assets {
		for i, doc := range yamlDocuments(t, a) {
			obj, gvk, err := strictDecoder.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s document %d: %v", a.Path, i, err)
				continue
			}
			if gvk.Kind == "" || gvk.Version == "" {
				t.Errorf("%s document %d has no apiVersion or kind", a.Path, i)
			}
			out = append(out, manifestObject{asset: a.Path, obj: obj})
		}
	}
	return out
}

func findObject[T runtime.Object](objs []manifestObject, name string) (T, bool) {
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			if m, ok := any(v).(interface{ GetName() string }); ok && m.GetName() == name {
				return v, true
			}
		}
	}
	var zero T
	return zero, false
}

func mustFindObject[T runtime.Object](t *testing.T, objs []manifestObject, name string) T {
	t.Helper()
	v, ok := findObject[T](objs, name)
	if !ok {
		var zero T
		t.Fatalf("no %T named %s", zero, name)
	}
	return v
}

// podSpecs are the pod specs of pods and workloads, by where they were found.
func podSpecs(objs []manifestObject) map[string]corev1.PodSpec {
	out := map[string]corev1.PodSpec{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.Pod:
			out[o.asset+" Pod "+v.Name] = v.Spec
		case *appsv1.DaemonSet:
			out[o.asset+" DaemonSet "+v.Name] = v.Spec.Template.Spec
		case *appsv1.Deployment:
			out[o.asset+" Deployment "+v.Name] = v.Spec.Template.Spec
		}
	}
	return out
}

func flagValue(args []string, flag string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
	}
	return "", false
}

func containerNamed(t *testing.T, ps corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range ps.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s", name)
	return corev1.Container{}
}

var manifestCases = []struct {
	name string
	edit func(c *spec.Cluster)
}{
	{"static", nil},
	{"self-hosted", withControlPlane(spec.ControlPlaneSelfHosted)},
	{"no networking", func(c *spec.Cluster) { c.Networking = "none" }},
}

func TestManifestsDecodeWithKubernetesTypes(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			assets := mustRenderManifests(t, manifestCluster(t, tc.edit))
			if objs := decodeManifests(t, assets); len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, a := range assets {
				wantKind, wantMode := KindManifest, 0o644
				switch {
				case a.Path == "manifests/00-bootstrap-token.yaml":
					wantKind, wantMode = KindBootstrapToken, 0o600
				case !strings.HasPrefix(a.Path, OutManifestDir+"/"):
					wantKind = KindStaticPod
				}
				if a.Kind != wantKind || int(a.Mode) != wantMode {
					t.Errorf("%s is %s mode %o, want %s mode %o", a.Path, a.Kind, a.Mode, wantKind, wantMode)
				}
			}
		})
	}
}

func TestManifestsApplyInFileNameOrder(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			var files []Asset
			for _, a := range mustRenderManifests(t, manifestCluster(t, tc.edit)) {
				if strings.HasPrefix(a.Path, OutManifestDir+"/") {
					files = append(files, a)
				}
			}
			sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
			// What a workload needs must exist by the time it is applied.
			defined := map[string]bool{}
			for _, a := range files {
				base := path.Base(a.Path)
				if len(base) < 3 || base[0] < '0' || base[0] > '9' || base[1] < '0' || base[1] > '9' || base[2] != '-' {
					t.Errorf("%s does not start with an order number", a.Path)
				}
				objs := decodeManifests(t, []Asset{a})
				for _, o := range objs {
					m, err := meta.Accessor(o.obj)
					if err != nil {
						t.Fatal(err)
					}
					defined[o.obj.GetObjectKind().GroupVersionKind().Kind+"/"+m.GetNamespace()+"/"+m.GetName()] = true
				}
				for where, ps := range podSpecs(objs) {
					if sa := ps.ServiceAccountName; sa != "" && !defined["ServiceAccount/kube-system/"+sa] {
						t.Errorf("%s uses ServiceAccount %s before it is applied", where, sa)
					}
					for _, v := range ps.Volumes {
						if v.ConfigMap != nil && !defined["ConfigMap/kube-system/"+v.ConfigMap.Name] {
							t.Errorf("%s mounts ConfigMap %s before it is applied", where, v.ConfigMap.Name)
						}
					}
				}
			}
		})
	}
}

func TestBootstrapTokenSecret(t *testing.T) {
	d := manifestCluster(t, nil)
	var token *Asset
	assets := mustRenderManifests(t, d)
	for i := range assets {
		if assets[i].Kind == KindBootstrapToken {
			token = &assets[i]
		}
	}
	if token == nil {
		t.Fatal("no bootstrap token rendered")
	}
	if !token.Sensitive() {
		t.Errorf("%s has mode %o: the token is a credential", token.Path, token.Mode)
	}
	objs := decodeManifests(t, []Asset{*token})
	// A machine's token expires; a pool's does not.
	for _, want := range []map[string]string{
		{"token-id": testTokenID, "token-secret": testTokenSecret, "expiration": testTokenExpiry.Format(time.RFC3339),
			"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true", "auth-extra-groups": NodeBootstrapGroup},
		{"token-id": "pool01", "token-secret": "fedcba9876543210", "expiration": "",
			"usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true", "auth-extra-groups": NodeBootstrapGroup},
	} {
		s := mustFindObject[*corev1.Secret](t, objs, "bootstrap-token-"+want["token-id"])
		if s.Namespace != "kube-system" || s.Type != corev1.SecretTypeBootstrapToken {
			t.Errorf("secret in %q of type %q", s.Namespace, s.Type)
		}
		for k, v := range want {
			if s.StringData[k] != v {
				t.Errorf("%s: %s = %q, want %q", s.Name, k, s.StringData[k], v)
			}
		}
	}
	// Once expired, a token is no longer rendered.
	d.BootstrapTokens = acceptedTokens(d.tokens, testTokenExpiry)
	for _, a := range mustRenderManifests(t, d) {
		if a.Kind == KindBootstrapToken && strings.Contains(string(a.Data), testTokenID) {
			t.Errorf("the expired token of node1 is still rendered:\n%s", a.Data)
		}
	}
	// The apiserver ignores extra groups outside system:bootstrappers:.
	if !strings.HasPrefix(NodeBootstrapGroup, "system:bootstrappers:") {
		t.Errorf("extra group %s is not a bootstrappers group", NodeBootstrapGroup)
	}
}

// TestClusterInfo checks what a machine holding the bootstrap token reads to find and trust the
// apiserver.
func TestClusterInfo(t *testing.T) {
	d := manifestCluster(t, nil)
	objs := decodeManifests(t, mustRenderManifests(t, d))
	cm := mustFindObject[*corev1.ConfigMap](t, objs, "cluster-info")
	if cm.Namespace != "kube-public" {
		t.Errorf("cluster-info in %s", cm.Namespace)
	}
	var kc clientcmdv1.Config
	if err := yaml.UnmarshalStrict([]byte(cm.Data["kubeconfig"]), &kc); err != nil {
		t.Fatalf("cluster-info kubeconfig: %v", err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != d.APIServerURL || string(kc.Clusters[0].Cluster.CertificateAuthorityData) != testCACertPEM {
		t.Errorf("cluster-info clusters %+v, want %s with the cluster CA", kc.Clusters, d.APIServerURL)
	}
	rb := mustFindObject[*rbacv1.RoleBinding](t, objs, "liftoff:bootstrap-signer-clusterinfo")
	if rb.Namespace != "kube-public" || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "system:bootstrappers" {
		t.Errorf("cluster-info readable by %+v in %s", rb.Subjects, rb.Namespace)
	}
	role := mustFindObject[*rbacv1.Role](t, objs, rb.RoleRef.Name)
	if r := role.Rules; len(r) != 1 || !slices.Equal(r[0].Verbs, []string{"get"}) || !slices.Equal(r[0].ResourceNames, []string{"cluster-info"}) {
		t.Errorf("cluster-info role grants %+v, want only get on cluster-info", r)
	}
}

func TestRBACBindsOnlyWhatBootstrapAndKubeletAccessNeed(t *testing.T) {
	objs := decodeManifests(t, mustRenderManifests(t, manifestCluster(t, nil)))
	subject := func(kind, name string) rbacv1.Subject {
		s := rbacv1.Subject{Kind: kind, Name: name}
		if kind == rbacv1.ServiceAccountKind {
			s.Namespace = "kube-system"
		} else {
			s.APIGroup = rbacv1.GroupName
		}
		return s
	}
	cases := []struct {
		role    string
		subject rbacv1.Subject
	}{
		{"cluster-admin", subject(rbacv1.GroupKind, UserAdminGroup)},
		{"system:node-bootstrapper", subject(rbacv1.GroupKind, NodeBootstrapGroup)},
		{"system:certificates.k8s.io:certificatesigningrequests:nodeclient", subject(rbacv1.GroupKind, NodeBootstrapGroup)},
		{"system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", subject(rbacv1.GroupKind, "system:nodes")},
		{"system:kubelet-api-admin", subject(rbacv1.UserKind, UserAPIServerKubelet)},
		{"system:node-proxier", subject(rbacv1.ServiceAccountKind, "kube-proxy")},
		{"liftoff:coredns", subject(rbacv1.ServiceAccountKind, "coredns")},
		{"liftoff:flannel", subject(rbacv1.ServiceAccountKind, "flannel")},
		{"liftoff:kubelet-serving-approver", subject(rbacv1.ServiceAccountKind, KubeletServingApprover)},
	}
	bound := map[string][]rbacv1.Subject{}
	for _, o := range objs {
		switch b := o.obj.(type) {
		case *rbacv1.ClusterRoleBinding:
			bound[b.RoleRef.Name] = append(bound[b.RoleRef.Name], b.Subjects...)
		case *rbacv1.RoleBinding:
			for _, s := range b.Subjects {
				if s.Name == "system:anonymous" || s.Name == "system:unauthenticated" {
					t.Errorf("RoleBinding %s/%s grants to %s", b.Namespace, b.Name, s.Name)
				}
			}
		}
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			if got := bound[tc.role]; len(got) != 1 || got[0] != tc.subject {
				t.Errorf("bound to %+v, want only %+v", got, tc.subject)
			}
		})
	}
	if len(bound) != len(cases) {
		t.Errorf("%d ClusterRoles bound, want %d: %v", len(bound), len(cases), bound)
	}
	for _, o := range objs {
		if r, ok := o.obj.(*rbacv1.ClusterRole); ok {
			for _, rule := range r.Rules {
				if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
					t.Errorf("ClusterRole %s has a wildcard rule %+v", r.Name, rule)
				}
			}
		}
	}
}

func TestStaticPodsRunOnTheirController(t *testing.T) {
	d := manifestCluster(t, nil)
	if len(d.Controllers) != 3 {
		t.Fatalf("example has %d controllers", len(d.Controllers))
	}
	for _, m := range d.Controllers {
		t.Run(m.Name, func(t *testing.T) {
			pods, err := staticPods(d, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(pods) != 3 {
				t.Fatalf("%d static pods, want 3", len(pods))
			}
			objs := decodeManifests(t, pods)
			// The apiserver serves on the machine's address; the controller-manager and the
			// scheduler only on its loopback.
			for _, c := range []struct {
				component string
				port      int
				probe     string
				host      string
			}{
				{"kube-apiserver", d.APIServerPort, "/livez", m.IP},
				{"kube-controller-manager", ControllerManagerPort, "/healthz", "127.0.0.1"},
				{"kube-scheduler", SchedulerPort, "/healthz", "127.0.0.1"},
			} {
				t.Run(c.component, func(t *testing.T) {
					a := pods[slices.IndexFunc(pods, func(a Asset) bool { return strings.HasSuffix(a.Path, c.component+".yaml") })]
					if a.Path != path.Join(OutStaticPodDir, m.Name, c.component+".yaml") || a.Node != m.Name || a.Role != "controller" || a.Kind != KindStaticPod {
						t.Errorf("asset %s node %q role %q kind %s", a.Path, a.Node, a.Role, a.Kind)
					}
					pod := mustFindObject[*corev1.Pod](t, objs, c.component)
					if !pod.Spec.HostNetwork || pod.Spec.PriorityClassName != "system-node-critical" || pod.Namespace != "kube-system" {
						t.Errorf("hostNetwork %v priority %q namespace %q", pod.Spec.HostNetwork, pod.Spec.PriorityClassName, pod.Namespace)
					}
					ctr := containerNamed(t, pod.Spec, c.component)
					if len(ctr.Command) == 0 || ctr.Command[0] != c.component {
						t.Errorf("command %v does not start with %s", ctr.Command, c.component)
					}
					if v, _ := flagValue(ctr.Args, "--bind-address"); v != c.host {
						t.Errorf("--bind-address=%q, want %s", v, c.host)
					}
					if v, _ := flagValue(ctr.Args, "--secure-port"); v != strconv.Itoa(c.port) {
						t.Errorf("--secure-port=%q, want %d", v, c.port)
					}
					probes := map[string]*corev1.Probe{"liveness": ctr.LivenessProbe, "startup": ctr.StartupProbe}
					if c.component == "kube-apiserver" {
						probes["readiness"] = ctr.ReadinessProbe
					}
					for kind, p := range probes {
						if p == nil || p.HTTPGet == nil {
							t.Errorf("no %s probe", kind)
							continue
						}
						g := p.HTTPGet
						if g.Host != c.host || g.Scheme != corev1.URISchemeHTTPS || g.Port.IntValue() != c.port {
							t.Errorf("%s probe %s://%s:%s%s, want https://%s:%d", kind, g.Scheme, g.Host, g.Port.String(), g.Path, c.host, c.port)
						}
					}
					if g := ctr.LivenessProbe.HTTPGet; g.Path != c.probe {
						t.Errorf("liveness probe path %s, want %s", g.Path, c.probe)
					}
					if c.component == "kube-apiserver" && ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
						t.Errorf("readiness probe path %s", ctr.ReadinessProbe.HTTPGet.Path)
					}
					checkHostFilesMounted(t, pod.Spec, ctr)
				})
			}
			api := containerNamed(t, mustFindObject[*corev1.Pod](t, objs, "kube-apiserver").Spec, "kube-apiserver")
			for flag, want := range map[string]string{
				"--advertise-address":           m.IP,
				"--etcd-servers":                d.EtcdServers,
				"--service-cluster-ip-range":    d.ServiceCIDR,
				"--authentication-config":       HostAuthnConfig,
				"--authorization-mode":          "Node,RBAC",
				"--service-account-issuer":      "https://kubernetes.default.svc." + d.ClusterDomain,
				"--etcd-certfile":               path.Join(HostPKIDir, APIServerEtcdCert),
				"--kubelet-client-certificate":  path.Join(HostPKIDir, APIServerKubeletCert),
				"--kubelet-client-key":          path.Join(HostPKIDir, APIServerKubeletKey),
				"--requestheader-allowed-names": UserFrontProxyClient,
			} {
				if got, _ := flagValue(api.Args, flag); got != want {
					t.Errorf("kube-apiserver %s=%q, want %q", flag, got, want)
				}
			}
			// The authentication configuration replaces --anonymous-auth; the apiserver refuses both.
			if _, ok := flagValue(api.Args, "--anonymous-auth"); ok {
				t.Error("kube-apiserver sets --anonymous-auth beside --authentication-config")
			}
			kcm := containerNamed(t, mustFindObject[*corev1.Pod](t, objs, "kube-controller-manager").Spec, "kube-controller-manager")
			for flag, want := range map[string]string{
				"--cluster-cidr": d.PodCIDR, "--kubeconfig": HostControllerManagerConf,
				"--controllers": "*,bootstrapsigner,tokencleaner", "--leader-elect": "true",
			} {
				if got, _ := flagValue(kcm.Args, flag); got != want {
					t.Errorf("kube-controller-manager %s=%q, want %q", flag, got, want)
				}
			}
		})
	}
}

// checkHostFilesMounted requires every absolute path a container's flags name to be inside one of its
// volume mounts, each a read-only host path.
func checkHostFilesMounted(t *testing.T, ps corev1.PodSpec, c corev1.Container) {
	t.Helper()
	hostPaths := map[string]string{}
	for _, v := range ps.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	for _, vm := range c.VolumeMounts {
		// Only the audit log is written to the host.
		if hp, ok := hostPaths[vm.Name]; !ok || hp != vm.MountPath || vm.ReadOnly == (vm.MountPath == HostAuditLogDir) {
			t.Errorf("mount %s at %s: host path %q read-only %v", vm.Name, vm.MountPath, hp, vm.ReadOnly)
		}
	}
	for _, arg := range c.Args {
		_, v, _ := strings.Cut(arg, "=")
		if !strings.HasPrefix(v, "/") {
			continue
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return v == vm.MountPath || strings.HasPrefix(v, vm.MountPath+"/")
		}) {
			t.Errorf("%s names a file that is not mounted", arg)
		}
	}
}

func TestControlPlaneModes(t *testing.T) {
	cases := []struct {
		mode                      string
		staticPods, bootstrapPods int
		selfHosted                bool
	}{
		{spec.ControlPlaneStatic, 9, 0, false},
		// Self-hosted: the checkpointer is each controller's only static pod.
		{spec.ControlPlaneSelfHosted, 3, 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			d := manifestCluster(t, withControlPlane(tc.mode))
			assets := mustRenderManifests(t, d)
			var static, bootstrap int
			for _, a := range assets {
				switch {
				case strings.HasPrefix(a.Path, OutStaticPodDir+"/"):
					static++
				case strings.HasPrefix(a.Path, OutBootstrapDir+"/"):
					bootstrap++
					if a.Role != "bootstrap" || a.Node != d.Controllers[0].Name || a.Kind != KindStaticPod {
						t.Errorf("%s: role %q node %q kind %s", a.Path, a.Role, a.Node, a.Kind)
					}
				}
			}
			if static != tc.staticPods || bootstrap != tc.bootstrapPods {
				t.Errorf("%d static pods and %d bootstrap pods, want %d and %d", static, bootstrap, tc.staticPods, tc.bootstrapPods)
			}
			objs := decodeManifests(t, assets)
			_, hasDaemonSet := findObject[*appsv1.DaemonSet](objs, "kube-apiserver")
			_, hasDeployment := findObject[*appsv1.Deployment](objs, "kube-controller-manager")
			if hasDaemonSet != tc.selfHosted || hasDeployment != tc.selfHosted {
				t.Fatalf("apiserver DaemonSet %v, controller-manager Deployment %v", hasDaemonSet, hasDeployment)
			}
			if tc.selfHosted {
				checkSelfHosted(t, d, objs)
			}
		})
	}
}

// checkSharesPort checks that a self-hosted cluster's control-plane container can listen beside its
// bootstrap predecessor on one address and port, and declares no container port, which on the host
// network would become a host port that keeps the scheduler from placing it beside that predecessor.
func checkSharesPort(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	if v, _ := flagValue(c.Args, "--permit-port-sharing"); v != "true" {
		t.Errorf("%s: --permit-port-sharing=%q, want true", where, v)
	}
	if len(c.Ports) > 0 {
		t.Errorf("%s declares ports %v", where, c.Ports)
	}
}

func checkSelfHosted(t *testing.T, d *Cluster, objs []manifestObject) {
	controllerTaint := corev1.Toleration{Key: "node-role.kubernetes.io/controller", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	placedOnControllers := func(where string, ps corev1.PodSpec) {
		if ps.NodeSelector[PlacementController] != "true" || !slices.Contains(ps.Tolerations, controllerTaint) || !ps.HostNetwork {
			t.Errorf("%s: nodeSelector %v tolerations %v hostNetwork %v", where, ps.NodeSelector, ps.Tolerations, ps.HostNetwork)
		}
		c := ps.Containers[0]
		if c.Name != componentAPIServer {
			if v, _ := flagValue(c.Args, "--bind-address"); v != "127.0.0.1" || len(c.Env) != 0 {
				t.Errorf("%s: --bind-address=%q env %+v, want the loopback only", where, v, c.Env)
			}
		} else {
			if v, _ := flagValue(c.Args, "--bind-address"); v != "$(HOST_IP)" {
				t.Errorf("%s: --bind-address=%q", where, v)
			}
			if len(c.Env) != 1 || c.Env[0].Name != "HOST_IP" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "status.hostIP" {
				t.Errorf("%s: HOST_IP is not the node's address: %+v", where, c.Env)
			}
		}
		checkHostFilesMounted(t, ps, c)
		checkSharesPort(t, where, c)
	}

	// Each controller runs the checkpointer as a static pod, as its node, with what it acts on mounted.
	var checkpointers []string
	for _, o := range objs {
		p, ok := o.obj.(*corev1.Pod)
		if !ok || p.Name != Checkpointer {
			continue
		}
		checkpointers = append(checkpointers, o.asset)
		c := p.Spec.Containers[0]
		node := strings.Split(o.asset, "/")[1]
		if c.Image != d.Images.Liftoff || !slices.Equal(c.Command[:2], []string{"liftoff", "checkpointer"}) || !slices.Contains(c.Command, "--node="+node) {
			t.Errorf("%s runs %s %v", o.asset, c.Image, c.Command)
		}
		if p.Spec.ServiceAccountName != "" || c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: service account %q, security context %+v", o.asset, p.Spec.ServiceAccountName, c.SecurityContext)
		}
		var mounted []string
		for _, m := range c.VolumeMounts {
			mounted = append(mounted, m.MountPath)
		}
		for _, want := range []string{HostStaticPodDir, HostCheckpointDir, HostKubeletKubeconfig, HostKubeletPKIDir, "/run/containerd"} {
			if !slices.Contains(mounted, want) {
				t.Errorf("%s does not mount %s: %v", o.asset, want, mounted)
			}
		}
	}
	if len(checkpointers) != len(d.Controllers) {
		t.Errorf("checkpointer static pods %v, want one per controller", checkpointers)
	}

	ds := mustFindObject[*appsv1.DaemonSet](t, objs, "kube-apiserver")
	if ds.Spec.Template.Annotations[CheckpointAnnotation] != "true" {
		t.Errorf("apiserver pods lack %s: %v", CheckpointAnnotation, ds.Spec.Template.Annotations)
	}
	placedOnControllers("kube-apiserver DaemonSet", ds.Spec.Template.Spec)
	if v, _ := flagValue(ds.Spec.Template.Spec.Containers[0].Args, "--advertise-address"); v != "$(HOST_IP)" {
		t.Errorf("kube-apiserver --advertise-address=%q", v)
	}

	for _, name := range []string{"kube-controller-manager", "kube-scheduler"} {
		dep := mustFindObject[*appsv1.Deployment](t, objs, name)
		if dep.Spec.Replicas == nil || int(*dep.Spec.Replicas) != len(d.Controllers) {
			t.Errorf("%s replicas %v, want %d", name, dep.Spec.Replicas, len(d.Controllers))
		}
		ps := dep.Spec.Template.Spec
		placedOnControllers(name+" Deployment", ps)
		if v, _ := flagValue(ps.Containers[0].Args, "--leader-elect"); v != "true" {
			t.Errorf("%s --leader-elect=%q", name, v)
		}
		if ps.Affinity == nil || ps.Affinity.PodAntiAffinity == nil {
			t.Errorf("%s pods are not spread over controllers", name)
		}
		pdb := mustFindObject[*policyv1.PodDisruptionBudget](t, objs, name)
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("%s PodDisruptionBudget minAvailable %v", name, pdb.Spec.MinAvailable)
		}
		for k, v := range pdb.Spec.Selector.MatchLabels {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("%s PodDisruptionBudget selects %v, not the Deployment's pods %v", name, pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels)
			}
		}
	}

	// The host agent reaches the API at its endpoint, not through kube-proxy's Service rules.
	agent := mustFindObject[*appsv1.DaemonSet](t, objs, HostAgent).Spec.Template.Spec
	env := map[string]string{}
	for _, e := range agent.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["KUBERNETES_SERVICE_HOST"] != d.APIServerHost || env["KUBERNETES_SERVICE_PORT"] != strconv.Itoa(d.APIServerPort) || !agent.HostNetwork {
		t.Errorf("the host agent reaches the API at %s:%s (host network %v), want the endpoint %s:%d", env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"], agent.HostNetwork, d.APIServerHost, d.APIServerPort)
	}
	// It runs only where liftoff placed it: on nodes labelled by bootstrap, not by their kubelets.
	var keys []string
	for _, term := range agent.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			keys = append(keys, e.Key)
		}
	}
	if want := []string{PlacementController, PlacementBootstrap}; !slices.Equal(keys, want) {
		t.Errorf("the host agent is placed by %v, want %v", keys, want)
	}

	first := d.Controllers[0]
	for _, name := range []string{"bootstrap-kube-apiserver", "bootstrap-kube-controller-manager", "bootstrap-kube-scheduler"} {
		pod := mustFindObject[*corev1.Pod](t, objs, name)
		c := pod.Spec.Containers[0]
		want := first.IP
		if name != "bootstrap-kube-apiserver" {
			want = "127.0.0.1"
		}
		if v, _ := flagValue(c.Args, "--bind-address"); v != want {
			t.Errorf("%s --bind-address=%q, want %s", name, v, want)
		}
		if c.Command[0] != strings.TrimPrefix(name, "bootstrap-") {
			t.Errorf("%s runs %v", name, c.Command)
		}
		checkSharesPort(t, name, c)
	}
	for where, c := range map[string]corev1.Container{"kube-apiserver DaemonSet": ds.Spec.Template.Spec.Containers[0],
		"bootstrap-kube-apiserver": mustFindObject[*corev1.Pod](t, objs, "bootstrap-kube-apiserver").Spec.Containers[0]} {
		if v, _ := flagValue(c.Args, "--shutdown-watch-termination-grace-period"); v == "" {
			t.Errorf("%s: watches hold the apiserver up to its shutdown timeout when it stops", where)
		}
	}
	api := mustFindObject[*corev1.Pod](t, objs, "bootstrap-kube-apiserver").Spec.Containers[0]
	if v, _ := flagValue(api.Args, "--etcd-servers"); v != d.EtcdServers {
		t.Errorf("bootstrap apiserver --etcd-servers=%q, want %s", v, d.EtcdServers)
	}
}

func TestNothingListensOnEveryInterface(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			d := manifestCluster(t, tc.edit)
			assets := mustRenderManifests(t, d)
			for _, a := range assets {
				for _, wildcard := range []string{"0.0.0.0", "[::]"} {
					if bytes.Contains(a.Data, []byte(wildcard)) {
						t.Errorf("%s names %s", a.Path, wildcard)
					}
				}
			}
			ips := map[string]bool{"$(HOST_IP)": true}
			for _, m := range d.Controllers {
				ips[m.IP] = true
			}
			for where, ps := range podSpecs(decodeManifests(t, assets)) {
				for _, c := range ps.Containers {
					for _, flag := range []string{"--bind-address", "--advertise-address"} {
						v, ok := flagValue(c.Args, flag)
						loopback := v == "127.0.0.1" && c.Name != componentAPIServer
						if ok && !ips[v] && !loopback {
							t.Errorf("%s: %s %s=%s is not a controller's address", where, c.Name, flag, v)
						}
					}
				}
			}
		})
	}
}

// TestComponentContainersStartWithTheirProgram keeps containers runnable by a harness that runs a
// known component image as the real program, with the container's command and arguments.
func TestComponentContainersStartWithTheirProgram(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			d := manifestCluster(t, tc.edit)
			programs := map[string]string{
				d.Images.KubeAPIServer: "kube-apiserver", d.Images.KubeControllerManager: "kube-controller-manager",
				d.Images.KubeScheduler: "kube-scheduler", d.Images.KubeProxy: "kube-proxy",
				d.Images.Liftoff: "liftoff",
			}
			seen := map[string]bool{}
			for where, ps := range podSpecs(decodeManifests(t, mustRenderManifests(t, d))) {
				for _, c := range append(ps.InitContainers, ps.Containers...) {
					if program, ok := programs[c.Image]; ok {
						seen[program] = true
						if len(c.Command) == 0 || c.Command[0] != program {
							t.Errorf("%s: container %s runs %v, want %s first", where, c.Name, c.Command, program)
						}
					}
				}
			}
			if len(seen) != len(programs) {
				t.Errorf("components run: %v", seen)
			}
		})
	}
}

func TestKubeProxy(t *testing.T) {
	d := manifestCluster(t, nil)
	objs := decodeManifests(t, mustRenderManifests(t, d))
	cm := mustFindObject[*corev1.ConfigMap](t, objs, "kube-proxy")

	var cfg kubeproxyv1alpha1.KubeProxyConfiguration
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.conf"]), &cfg); err != nil {
		t.Fatalf("KubeProxyConfiguration: %v", err)
	}
	if cfg.APIVersion != "kubeproxy.config.k8s.io/v1alpha1" || cfg.Kind != "KubeProxyConfiguration" {
		t.Errorf("config is %s %s", cfg.APIVersion, cfg.Kind)
	}
	if cfg.ClusterCIDR != d.PodCIDR {
		t.Errorf("clusterCIDR %s, want %s", cfg.ClusterCIDR, d.PodCIDR)
	}

	var kc clientcmdv1.Config
	if err := yaml.UnmarshalStrict([]byte(cm.Data["kubeconfig.conf"]), &kc); err != nil {
		t.Fatalf("kube-proxy kubeconfig: %v", err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != d.APIServerURL {
		t.Errorf("kubeconfig clusters %+v, want server %s", kc.Clusters, d.APIServerURL)
	}
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	if len(kc.AuthInfos) != 1 || kc.AuthInfos[0].AuthInfo.TokenFile != sa+"token" || kc.Clusters[0].Cluster.CertificateAuthority != sa+"ca.crt" {
		t.Errorf("kube-proxy does not use its service account: %+v", kc.AuthInfos)
	}

	ds := mustFindObject[*appsv1.DaemonSet](t, objs, "kube-proxy")
	ps := ds.Spec.Template.Spec
	c := containerNamed(t, ps, "kube-proxy")
	if !ps.HostNetwork || c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("kube-proxy is not a privileged host-network pod")
	}
	if !slices.Contains(ps.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists}) {
		t.Errorf("kube-proxy does not tolerate every taint: %v", ps.Tolerations)
	}
	if ps.ServiceAccountName != "kube-proxy" {
		t.Errorf("service account %q", ps.ServiceAccountName)
	}
	// The files the container reads are the ConfigMap's keys where the ConfigMap is mounted.
	conf, _ := flagValue(c.Args, "--config")
	for _, file := range []string{conf, cfg.ClientConnection.Kubeconfig} {
		key, ok := strings.CutPrefix(file, configMapMount(t, ps, c, "kube-proxy")+"/")
		if _, in := cm.Data[key]; !ok || !in {
			t.Errorf("%s is not a key of the mounted ConfigMap", file)
		}
	}
}

// mountOf is where container c mounts the ConfigMap named name.
func configMapMount(t *testing.T, ps corev1.PodSpec, c corev1.Container, name string) string {
	t.Helper()
	for _, v := range ps.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == name {
			for _, vm := range c.VolumeMounts {
				if vm.Name == v.Name {
					return strings.TrimSuffix(vm.MountPath, "/")
				}
			}
		}
	}
	t.Fatalf("%s does not mount ConfigMap %s", c.Name, name)
	return ""
}

func TestCoreDNS(t *testing.T) {
	d := manifestCluster(t, func(c *spec.Cluster) { c.ClusterDomain = "demo.internal" })
	objs := decodeManifests(t, mustRenderManifests(t, d))
	svc := mustFindObject[*corev1.Service](t, objs, "kube-dns")
	if svc.Spec.ClusterIP != d.DNSServiceIP || svc.Namespace != "kube-system" {
		t.Errorf("kube-dns at %s in %s, want %s in kube-system", svc.Spec.ClusterIP, svc.Namespace, d.DNSServiceIP)
	}
	dep := mustFindObject[*appsv1.Deployment](t, objs, "coredns")
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("kube-dns selects %v, not CoreDNS pods %v", svc.Spec.Selector, dep.Spec.Template.Labels)
		}
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", dep.Spec.Replicas)
	}
	ps := dep.Spec.Template.Spec
	c := containerNamed(t, ps, "coredns")
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Error("CoreDNS has no readiness or liveness probe")
	}
	if ps.Affinity == nil || ps.Affinity.PodAntiAffinity == nil {
		t.Error("CoreDNS replicas are not spread over nodes")
	}
	// Forwarding to /etc/resolv.conf must reach the node's resolvers, not CoreDNS's own Service.
	if ps.DNSPolicy != corev1.DNSDefault {
		t.Errorf("CoreDNS has dnsPolicy %q, want Default: it would forward queries to itself", ps.DNSPolicy)
	}
	cm := mustFindObject[*corev1.ConfigMap](t, objs, "coredns")
	if !strings.Contains(cm.Data["Corefile"], "kubernetes demo.internal in-addr.arpa") {
		t.Errorf("Corefile does not serve demo.internal:\n%s", cm.Data["Corefile"])
	}
}

func TestFlannelFollowsNetworking(t *testing.T) {
	for _, networking := range []string{"flannel", "none"} {
		t.Run(networking, func(t *testing.T) {
			d := manifestCluster(t, func(c *spec.Cluster) { c.Networking = networking })
			objs := decodeManifests(t, mustRenderManifests(t, d))
			ds, ok := findObject[*appsv1.DaemonSet](objs, "flannel")
			if ok != (networking == "flannel") {
				t.Fatalf("flannel DaemonSet rendered: %v", ok)
			}
			if !ok {
				return
			}
			cm := mustFindObject[*corev1.ConfigMap](t, objs, "flannel")
			var net struct {
				Network string
				Backend struct{ Type string }
			}
			if err := json.Unmarshal([]byte(cm.Data["net-conf.json"]), &net); err != nil {
				t.Fatalf("net-conf.json: %v", err)
			}
			if net.Network != d.PodCIDR || net.Backend.Type != "vxlan" {
				t.Errorf("net-conf.json %+v, want Network %s over vxlan", net, d.PodCIDR)
			}
			var cni struct {
				CNIVersion string `json:"cniVersion"`
				Plugins    []struct{ Type string }
			}
			if err := json.Unmarshal([]byte(cm.Data["cni-conf.json"]), &cni); err != nil || len(cni.Plugins) == 0 || cni.Plugins[0].Type != "flannel" {
				t.Errorf("cni-conf.json %+v: %v", cni, err)
			}
			ps := ds.Spec.Template.Spec
			var images []string
			for _, c := range ps.InitContainers {
				images = append(images, c.Image)
			}
			if !slices.Equal(images, []string{d.Images.FlannelCNIPlugin, d.Images.Flannel}) {
				t.Errorf("init containers run %v", images)
			}
			if containerNamed(t, ps, "flannel").Image != d.Images.Flannel {
				t.Error("flannel runs another image")
			}
			if !slices.Contains(ps.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists}) || !ps.HostNetwork {
				t.Errorf("flannel tolerations %v hostNetwork %v", ps.Tolerations, ps.HostNetwork)
			}
		})
	}
}

func TestAuthenticationConfigAllowsAnonymousOnlyHealthChecks(t *testing.T) {
	// Decode as kube-apiserver loads --authentication-config: its own scheme, strictly.
	s := runtime.NewScheme()
	apiserverinstall.Install(s)
	codecs := serializer.NewCodecFactory(s, serializer.EnableStrict)
	obj, gvk, err := codecs.UniversalDecoder().Decode(apiServerFile(t, manifestCluster(t, nil), HostAuthnConfig), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gvk.GroupVersion().String() != "apiserver.config.k8s.io/v1beta1" || gvk.Kind != "AuthenticationConfiguration" {
		t.Errorf("decoded as %s", gvk)
	}
	cfg, ok := obj.(*apiserverconfig.AuthenticationConfiguration)
	if !ok {
		t.Fatalf("decoded to %T", obj)
	}
	if len(cfg.JWT) != 0 {
		t.Errorf("JWT authenticators %+v", cfg.JWT)
	}
	if cfg.Anonymous == nil || !cfg.Anonymous.Enabled {
		t.Fatal("anonymous health checks are not allowed, so kubelet probes would fail")
	}
	var paths []string
	for _, c := range cfg.Anonymous.Conditions {
		paths = append(paths, c.Path)
	}
	if !sameStrings(paths, []string{"/livez", "/readyz", "/healthz"}) {
		t.Errorf("anonymous requests allowed on %v", paths)
	}
}

// apiServerFile is the apiserver configuration file a controller receives at host path p.
func apiServerFile(t *testing.T, d *Cluster, p string) []byte {
	t.Helper()
	files, err := apiServerFiles(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == p {
			if f.Mode != 0o600 {
				t.Errorf("%s has mode %#o, not 0600", p, f.Mode)
			}
			return []byte(f.Text)
		}
	}
	t.Fatalf("controllers get no %s", p)
	return nil
}

// TestAPIServerConfigurationFilesLoad decodes the audit policy, the admission configuration and the
// encryption configuration strictly, with kube-apiserver's own schemes, and validates the policy as
// it does at start. The clusters of the harness tests start kube-apiserver with them all.
func TestAPIServerConfigurationFilesLoad(t *testing.T) {
	d := manifestCluster(t, nil)
	d.EncryptionKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

	s := runtime.NewScheme()
	apiserverinstall.Install(s)
	auditinstall.Install(s)
	codecs := serializer.NewCodecFactory(s, serializer.EnableStrict)
	decode := func(p string, into runtime.Object) {
		t.Helper()
		if _, _, err := codecs.UniversalDecoder().Decode(apiServerFile(t, d, p), nil, into); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}

	var policy audit.Policy
	decode(HostAuditPolicy, &policy)
	if errs := auditvalidation.ValidatePolicy(&policy); len(errs) > 0 {
		t.Errorf("audit policy: %v", errs.ToAggregate())
	}
	// Secrets' bodies are never logged: the first rule that matches a secret says Metadata.
	for _, r := range policy.Rules {
		if slices.ContainsFunc(r.Resources, func(g audit.GroupResources) bool { return g.Group == "" && slices.Contains(g.Resources, "secrets") }) {
			if r.Level != audit.LevelMetadata {
				t.Errorf("secrets are audited at level %s", r.Level)
			}
			break
		}
		if r.Level != audit.LevelNone && len(r.Resources) == 0 && len(r.NonResourceURLs) == 0 && len(r.Verbs) == 0 {
			t.Errorf("a rule at level %s matches secrets before theirs", r.Level)
		}
	}

	var enc apiserverconfig.EncryptionConfiguration
	decode(HostEncryptionConfig, &enc)
	if len(enc.Resources) != 1 || !slices.Equal(enc.Resources[0].Resources, []string{"secrets"}) {
		t.Fatalf("encrypted resources %+v", enc.Resources)
	}
	first := enc.Resources[0].Providers[0]
	if first.Secretbox == nil || first.Secretbox.Keys[0].Secret != d.EncryptionKey || first.Secretbox.Keys[0].Name != EncryptionKeyName {
		t.Errorf("Secrets are not written with the cluster's secretbox key first: %+v", first)
	}

	var adm apiserverconfig.AdmissionConfiguration
	decode(HostAdmissionConfig, &adm)
	if len(adm.Plugins) != 1 || adm.Plugins[0].Name != "PodSecurity" {
		t.Fatalf("admission plugins configured: %+v", adm.Plugins)
	}
	var pss struct {
		Defaults   map[string]string `json:"defaults"`
		Exemptions struct {
			Namespaces []string `json:"namespaces"`
		} `json:"exemptions"`
	}
	if err := json.Unmarshal(adm.Plugins[0].Configuration.Raw, &pss); err != nil {
		t.Fatal(err)
	}
	if pss.Defaults["enforce"] != "baseline" || pss.Defaults["warn"] != "restricted" || pss.Defaults["audit"] != "restricted" {
		t.Errorf("Pod Security defaults %v", pss.Defaults)
	}
	if !slices.Equal(pss.Exemptions.Namespaces, []string{"kube-system"}) {
		t.Errorf("namespaces exempt from Pod Security: %v", pss.Exemptions.Namespaces)
	}
}

// TestAPIServerVerifiesKubeletServingCertificates: in every control plane (static pods, the
// bootstrap pods and the self-hosted workloads) kube-apiserver checks kubelets' serving certificates
// against the cluster CA, and the controller-manager signs them with it.
func TestAPIServerVerifiesKubeletServingCertificates(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			d := manifestCluster(t, tc.edit)
			want := map[string]map[string]string{
				componentAPIServer: {
					"--kubelet-certificate-authority": path.Join(HostPKIDir, CACert),
					"--kubelet-client-certificate":    path.Join(HostPKIDir, APIServerKubeletCert),
					"--kubelet-client-key":            path.Join(HostPKIDir, APIServerKubeletKey),
				},
				componentControllerManager: {
					"--cluster-signing-cert-file": path.Join(HostPKIDir, CACert),
					"--cluster-signing-key-file":  path.Join(HostPKIDir, CAKey),
				},
			}
			seen := map[string]int{}
			for where, ps := range podSpecs(decodeManifests(t, mustRenderManifests(t, d))) {
				for _, c := range ps.Containers {
					if len(c.Command) == 0 || want[c.Command[0]] == nil {
						continue
					}
					seen[c.Command[0]]++
					for flag, value := range want[c.Command[0]] {
						if got, _ := flagValue(c.Args, flag); got != value {
							t.Errorf("%s: %s=%q, want %q", where, flag, got, value)
						}
					}
					// The csrsigning controller, which signs kubelet-serving certificates, is one of "*".
					if v, ok := flagValue(c.Args, "--controllers"); ok && !slices.Contains(strings.Split(v, ","), "*") {
						t.Errorf("%s: --controllers=%s leaves out the default controllers", where, v)
					}
				}
			}
			if seen[componentAPIServer] == 0 || seen[componentControllerManager] == 0 {
				t.Errorf("control-plane containers found: %v", seen)
			}
		})
	}
}

// TestKubeletServingApprover checks the approver's workload and that its RBAC is exactly what it
// needs: csrapprover's test against a real apiserver runs it with these rules.
func TestKubeletServingApprover(t *testing.T) {
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			d := manifestCluster(t, tc.edit)
			objs := decodeManifests(t, mustRenderManifests(t, d))
			dep := mustFindObject[*appsv1.Deployment](t, objs, KubeletServingApprover)
			if dep.Namespace != "kube-system" || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
				t.Errorf("Deployment in %q with replicas %v, want 2 in kube-system", dep.Namespace, dep.Spec.Replicas)
			}
			ps := dep.Spec.Template.Spec
			controllerTaint := corev1.Toleration{Key: "node-role.kubernetes.io/controller", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
			if ps.ServiceAccountName != KubeletServingApprover || ps.PriorityClassName != "system-cluster-critical" ||
				ps.NodeSelector[PlacementController] != "true" || !slices.Contains(ps.Tolerations, controllerTaint) {
				t.Errorf("service account %q priority %q nodeSelector %v tolerations %v", ps.ServiceAccountName, ps.PriorityClassName, ps.NodeSelector, ps.Tolerations)
			}
			if ps.HostNetwork || ps.HostPID || (ps.AutomountServiceAccountToken != nil && !*ps.AutomountServiceAccountToken) {
				t.Errorf("hostNetwork %v hostPID %v automountServiceAccountToken %v", ps.HostNetwork, ps.HostPID, ps.AutomountServiceAccountToken)
			}
			if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %+v: want non-root with a fixed UID and the runtime's seccomp profile", sc)
			}
			if len(ps.Containers) != 1 || len(ps.InitContainers) != 0 || len(ps.Volumes) != 0 {
				t.Fatalf("%d containers, %d init containers, %d volumes", len(ps.Containers), len(ps.InitContainers), len(ps.Volumes))
			}
			c := ps.Containers[0]
			if c.Image != d.Images.Liftoff || !slices.Equal(c.Command, []string{"liftoff", "kubelet-serving-approver"}) || len(c.Args) != 0 {
				t.Errorf("runs %s %v %v", c.Image, c.Command, c.Args)
			}
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || (sc.Privileged != nil && *sc.Privileged) ||
				sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
				t.Errorf("container security context %+v", sc)
			}
			if c.Resources.Limits.Memory().IsZero() {
				t.Error("no memory limit")
			}

			sa := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: KubeletServingApprover, Namespace: "kube-system"}
			crb := mustFindObject[*rbacv1.ClusterRoleBinding](t, objs, "liftoff:kubelet-serving-approver")
			if !slices.Equal(crb.Subjects, []rbacv1.Subject{sa}) || crb.RoleRef.Kind != "ClusterRole" {
				t.Errorf("ClusterRoleBinding binds %s to %+v", crb.RoleRef.Name, crb.Subjects)
			}
			cr := mustFindObject[*rbacv1.ClusterRole](t, objs, crb.RoleRef.Name)
			wantCluster := []rbacv1.PolicyRule{
				{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"list", "watch"}},
				{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests/approval"}, Verbs: []string{"update"}},
				{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, ResourceNames: []string{"kubernetes.io/kubelet-serving"}, Verbs: []string{"approve"}},
				{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
			}
			if !equalRules(cr.Rules, wantCluster) {
				t.Errorf("ClusterRole rules %+v\nwant %+v", cr.Rules, wantCluster)
			}
			rb := mustFindObject[*rbacv1.RoleBinding](t, objs, "liftoff:kubelet-serving-approver")
			if rb.Namespace != "kube-system" || !slices.Equal(rb.Subjects, []rbacv1.Subject{sa}) || rb.RoleRef.Kind != "Role" {
				t.Errorf("RoleBinding in %s binds %s %s to %+v", rb.Namespace, rb.RoleRef.Kind, rb.RoleRef.Name, rb.Subjects)
			}
			role := mustFindObject[*rbacv1.Role](t, objs, rb.RoleRef.Name)
			wantRole := []rbacv1.PolicyRule{
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
				{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{KubeletServingApprover}, Verbs: []string{"get", "update"}},
			}
			if role.Namespace != "kube-system" || !equalRules(role.Rules, wantRole) {
				t.Errorf("Role in %s rules %+v\nwant %+v", role.Namespace, role.Rules, wantRole)
			}
		})
	}
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.ResourceNames, y.ResourceNames) && slices.Equal(x.Verbs, y.Verbs) && len(x.NonResourceURLs) == len(y.NonResourceURLs)
	})
}

func TestManifestsNeedTheBootstrapToken(t *testing.T) {
	d := manifestCluster(t, nil)
	d.tokens = nil
	if _, err := renderManifests(d); err == nil || !strings.Contains(err.Error(), "bootstrap token") {
		t.Fatalf("got %v", err)
	}
}

// TestControlPlaneHardening checks every control-plane container, static, bootstrap or
// self-hosted: TLS 1.2 at least with only the strong cipher suites, and no profiling endpoints.
func TestControlPlaneHardening(t *testing.T) {
	suites := strings.Join(TLSCipherSuites, ",")
	for _, tc := range manifestCases {
		t.Run(tc.name, func(t *testing.T) {
			d := manifestCluster(t, tc.edit)
			checked := 0
			for where, ps := range podSpecs(decodeManifests(t, mustRenderManifests(t, d))) {
				for _, c := range ps.Containers {
					if !slices.Contains(controlPlaneComponents, c.Name) {
						continue
					}
					checked++
					if v, _ := flagValue(c.Args, "--tls-cipher-suites"); v != suites {
						t.Errorf("%s %s: --tls-cipher-suites=%q", where, c.Name, v)
					}
					if v, _ := flagValue(c.Args, "--tls-min-version"); v != "VersionTLS12" {
						t.Errorf("%s %s: --tls-min-version=%q", where, c.Name, v)
					}
					if v, _ := flagValue(c.Args, "--profiling"); v != "false" {
						t.Errorf("%s %s: --profiling=%q, want false", where, c.Name, v)
					}
				}
			}
			if checked == 0 {
				t.Fatal("no control-plane container checked")
			}
		})
	}
	kc, err := kubeletConfig(manifestCluster(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kc), "tlsCipherSuites:\n- "+TLSCipherSuites[0]) || !strings.Contains(string(kc), "tlsMinVersion: VersionTLS12") {
		t.Errorf("the kubelet's configuration does not limit TLS:\n%s", kc)
	}
	etcd, err := etcdConfig(manifestCluster(t, nil), manifestCluster(t, nil).Controllers[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(etcd), "cipher-suites:\n- "+TLSCipherSuites[0]) || !strings.Contains(string(etcd), "tls-min-version: TLS1.2") {
		t.Errorf("etcd's configuration does not limit TLS:\n%s", etcd)
	}
}
