package generator

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"text/template"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/internal/butane"
	"github.com/liftoff-k8s/liftoff/spec"
	"github.com/liftoff-k8s/liftoff/templates"
)

var butaneTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"indent": indent,
	"join":   strings.Join,
}).ParseFS(templates.FS, "butane/*.tmpl", "butane/units/*.tmpl"))

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

func execute(name string, data any) (string, error) {
	var b bytes.Buffer
	if err := butaneTemplates.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("template %s: %w", name, err)
	}
	return b.String(), nil
}

// hostFile is a file placed on a machine by Ignition, owned by root or by Owner (as uid and gid).
type hostFile struct {
	Path  string
	Mode  int
	Owner int
	Text  string
	// Secret marks a private key or credential: with machine_secrets.server it is left out of the
	// Ignition config and fetched from liftoff at first boot.
	Secret bool
}

// splitSecrets returns files without the secret ones, and the secret ones, when machines fetch
// their secrets; otherwise files as they are.
func (r *machineRenderer) splitSecrets(files []hostFile) (plain, secret []hostFile) {
	if !r.d.Spec.FetchesSecrets() {
		return files, nil
	}
	for _, f := range files {
		if f.Secret {
			secret = append(secret, f)
		} else {
			plain = append(plain, f)
		}
	}
	return plain, secret
}

// program is how a host program (kubelet, etcd) is installed and started on a machine.
type program struct {
	Name        string
	Version     string
	InstallUnit string
	// Exec is the command line that runs the program, without its own arguments.
	Exec string
	// Files Ignition places for this delivery (a sysext image).
	SysextURL, SysextSHA512 string
}

// containerEngine is the OS's container engine command.
func containerEngine(os string) string {
	if os == spec.OSFCOS {
		return "/usr/bin/podman"
	}
	return "/usr/bin/docker"
}

// checksumFor says how liftoff-fetch verifies a download: a pinned digest, or the checksum file each
// project publishes beside its default download.
func checksumFor(name string, p *spec.Program, arch string) (string, error) {
	if p.SHA512 != "" {
		return "sha512:" + p.SHA512, nil
	}
	// The spec names its blocks with underscores (cni_plugins), programs with dashes.
	if kind, url, ok := spec.PublishedChecksum(strings.ReplaceAll(name, "-", "_"), p, arch); ok {
		return kind + "-url:" + url, nil
	}
	return "", fmt.Errorf("%s.sha512 is required: %s is not a default download with a published checksum", name, p.Expand(arch))
}

// hostProgram renders the install unit and start command of a program for one OS. A program
// delivered as a container runs as user (uid:gid) when one is given, else as root.
func hostProgram(c *spec.Cluster, name string, p *spec.Program, mounts []string, user string) (*program, error) {
	prog := &program{Name: name, Version: p.Version}
	unit := struct{ Name, Version, Path, Command string }{Name: name, Version: p.Version}
	switch p.Delivery {
	case spec.DeliveryDownload:
		sum, err := checksumFor(name, p, c.Arch)
		if err != nil {
			return nil, err
		}
		unit.Path = fmt.Sprintf("/opt/liftoff/%s-%s/%s", name, p.Version, name)
		unit.Command = fmt.Sprintf("%s %s %s %s %s", HostFetchScript, name, p.Version, p.Expand(c.Arch), sum)
		prog.Exec = path.Join(HostBinDir, name)
		if name == "cni-plugins" {
			// The plugins go where container runtimes look for them; bridge is one every release has.
			unit.Path = fmt.Sprintf("/opt/liftoff/%s-%s/bridge", name, p.Version)
			unit.Command += " " + HostCNIBinDir + " bridge"
			prog.Exec = ""
		}
	case spec.DeliverySysext:
		unit.Path = "/usr/bin/" + name
		unit.Command = "/usr/bin/systemd-sysext refresh"
		prog.Exec = "/usr/bin/" + name
		prog.SysextURL, prog.SysextSHA512 = p.Expand(c.Arch), p.SHA512
	case spec.DeliveryContainer:
		engine := containerEngine(c.OS)
		unit.Command = engine + " pull " + p.Image
		args := []string{engine, "run", "--rm", "--name", name, "--privileged", "--pid=host", "--network=host"}
		for _, m := range mounts {
			args = append(args, "--volume", m)
		}
		if user != "" {
			args = append(args, "--user", user)
		}
		prog.Exec = strings.Join(append(args, p.Image, name), " ")
	default:
		return nil, fmt.Errorf("unknown delivery %q", p.Delivery)
	}
	var err error
	prog.InstallUnit, err = execute("install.service.tmpl", unit)
	return prog, err
}

var kubeletMounts = []string{
	"/etc/kubernetes:/etc/kubernetes:ro", "/var/lib/kubelet:/var/lib/kubelet:rshared", "/run:/run",
	"/sys:/sys", "/dev:/dev", "/var/log:/var/log", "/lib/modules:/lib/modules:ro",
	"/etc/cni/net.d:/etc/cni/net.d:ro", "/opt/cni/bin:/opt/cni/bin:ro", "/var/lib/containerd:/var/lib/containerd",
	"/etc/machine-id:/etc/machine-id:ro",
}

// kernelSetting is one line of the machine's sysctl.d file.
type kernelSetting struct{ Key, Value string }

// kubeletKernelSettings are the kernel settings the kubelet checks when it starts (setupKernelTunables
// in k8s.io/kubernetes pkg/kubelet/cm/container_manager_linux.go). kubeletConfig sets
// protectKernelDefaults, so the kubelet never rewrites them itself but refuses to start when any
// differs: every machine sets them at boot instead.
var kubeletKernelSettings = []kernelSetting{
	{"vm.overcommit_memory", "1"},             // always allow overcommit, as the kubelet's memory accounting expects
	{"vm.panic_on_oom", "0"},                  // out of memory, the OOM killer ends a process; the node does not panic
	{"kernel.panic", "10"},                    // after a panic, reboot within 10 seconds
	{"kernel.panic_on_oops", "1"},             // an oops panics (and so reboots) rather than running on in a broken state
	{"kernel.keys.root_maxkeys", "1000000"},   // every container gets a session keyring
	{"kernel.keys.root_maxbytes", "25000000"}, // 25 bytes for each of those keys
}

var etcdMounts = []string{"/etc/etcd:/etc/etcd:ro", HostEtcdDataDir + ":" + HostEtcdDataDir}

// runsControlPlane reports whether machines of a role run etcd and an apiserver: controllers, and
// the bootstrap machine until the pivot is done.
func runsControlPlane(role string) bool {
	return role == spec.RoleController || role == spec.RoleBootstrap
}

// machineRenderer renders Ignition configs. The part shared by a role is translated once per
// render; only the small per-machine part is translated per machine.
type machineRenderer struct {
	d        *Cluster
	pki      issued
	files    map[string][]byte // rendered assets by output path, for placing on machines
	roleBase map[string]igntypes.Config
	// roleSecrets are the secret files every machine of a role gets, when machines fetch them.
	roleSecrets map[string][]hostFile
	// kubeletConfig is the machines' KubeletConfiguration, which every role shares.
	kubeletConfig string
	// sharedBootstrapKubeconfig is the bootstrap kubeconfig with bootstrapTokenMark for the token.
	sharedBootstrapKubeconfig func() (string, error)
	// platform returns what the spec's platform adds to a machine's config (Options.MachineConfig).
	platform func(spec.Node) (*igntypes.Config, error)
	// roleRefs are, by role, the references to the roles' shared configs that machines merge
	// (Options.RoleConfigURL); empty when every machine's config is whole.
	roleRefs map[string]igntypes.Resource
}

func (r *machineRenderer) roleData(role string) (any, error) {
	c := r.d.Spec
	variant, version := butane.Header(c.OS)
	kubelet, err := hostProgram(c, "kubelet", c.Kubelet, kubeletMounts, "")
	if err != nil {
		return nil, err
	}
	// With machine_secrets.server, the kubelet and etcd start once the machine has its secrets.
	secretsUnit := ""
	if c.FetchesSecrets() {
		secretsUnit = SecretsFetchUnit
	}
	kubeletUnit, err := execute("kubelet.service.tmpl", map[string]string{
		"Exec": kubelet.Exec, "StaticPodDir": HostStaticPodDir, "KubeletPKIDir": HostKubeletPKIDir,
		"BootstrapKubeconfig": HostBootstrapKubeletConf, "Kubeconfig": HostKubeletKubeconfig, "Config": HostKubeletConfig,
		"ConfigDir": HostKubeletConfigDir,
		"Secrets":   secretsUnit,
	})
	if err != nil {
		return nil, err
	}
	cni, err := hostProgram(c, "cni-plugins", c.CNIPlugins, nil, "")
	if err != nil {
		return nil, err
	}
	script, err := templates.FS.ReadFile("butane/liftoff-fetch.sh")
	if err != nil {
		return nil, err
	}
	// Once the kubelet has joined, the bootstrap token leaves the machine.
	cleanupScript, err := templates.FS.ReadFile("butane/liftoff-remove-bootstrap-kubeconfig.sh")
	if err != nil {
		return nil, err
	}
	cleanupUnit, err := execute("liftoff-remove-bootstrap-kubeconfig.service.tmpl", map[string]string{
		"Script": HostBootstrapCleanup, "Bootstrap": HostBootstrapKubeletConf, "Kubeconfig": HostKubeletKubeconfig,
		"Cert": path.Join(HostKubeletPKIDir, "kubelet-client-current.pem"),
	})
	if err != nil {
		return nil, err
	}
	data := map[string]any{
		"Variant": variant, "Version": version, "SSHKeys": c.SSHAuthorizedKeys,
		"Controller": runsControlPlane(role), "Networking": c.Networking,
		"KubeletInstallUnit": kubelet.InstallUnit, "KubeletUnit": kubeletUnit, "CNIInstallUnit": cni.InstallUnit,
		"BootstrapCleanupUnit": cleanupUnit,
		"StaticPodDir":         HostStaticPodDir, "EtcdDataDir": HostEtcdDataDir, "EtcdMemberPKIDir": HostEtcdMemberPKIDir,
		"EtcdUser": EtcdUser, "EtcdUID": EtcdUID,
		"FetchScript": HostFetchScript, "FetchScriptText": string(script),
		"KernelSettings": kubeletKernelSettings,
	}
	// Programs delivered as sysext images are files Ignition fetches and verifies.
	var sysexts []program
	if kubelet.SysextURL != "" {
		sysexts = append(sysexts, *kubelet)
	}
	// Configuration the kubelet, etcd and the control plane read as root is readable by root only.
	files := append(r.pkiFiles(everyMachine, nil), hostFile{Path: HostBootstrapCleanup, Mode: 0o755, Text: string(cleanupScript)},
		hostFile{Path: HostKubeletConfig, Mode: 0o600, Text: r.kubeletConfig})
	if runsControlPlane(role) {
		etcd, err := hostProgram(c, "etcd", c.Etcd, etcdMounts, fmt.Sprintf("%d:%d", EtcdUID, EtcdUID))
		if err != nil {
			return nil, err
		}
		// The unit runs etcd as its user, except where a container engine's client, which runs as
		// root, starts etcd as that user inside the container.
		container := c.Etcd.Delivery == spec.DeliveryContainer
		unitUser := EtcdUser
		if container {
			unitUser = ""
		}
		etcdUnit, err := execute("etcd.service.tmpl", map[string]any{
			"Exec": etcd.Exec + " --config-file=" + HostEtcdStartConfig, "Notify": !container,
			"DataDir": HostEtcdDataDir, "ExecStartPre": etcdJoinCommand, "User": unitUser, "Secrets": secretsUnit,
		})
		if err != nil {
			return nil, err
		}
		data["EtcdInstallUnit"], data["EtcdUnit"] = etcd.InstallUnit, etcdUnit
		if etcd.SysextURL != "" {
			sysexts = append(sysexts, *etcd)
		}
		files = append(files, r.pkiFiles(controlPlane, nil)...)
		apiServer, err := apiServerFiles(r.d)
		if err != nil {
			return nil, err
		}
		files = append(append(files, apiServer...), etcdJoinFile)
	}
	// The bootstrap machine's etcd member is temporary: only controllers keep snapshots.
	if role == spec.RoleController {
		if data["EtcdSnapshot"], err = etcdSnapshotUnits(c); err != nil {
			return nil, err
		}
		if data["EtcdRestore"], err = etcdRestoreUnit(r.d); err != nil {
			return nil, err
		}
	}
	if c.FetchesSecrets() {
		fetch, err := secretsFetch(c)
		if err != nil {
			return nil, err
		}
		data["SecretsFetch"] = fetch
		files, r.roleSecrets[role] = r.splitSecrets(files)
	}
	data["Files"], data["Sysexts"] = files, sysexts
	return data, nil
}

func (r *machineRenderer) base(role string) (igntypes.Config, error) {
	if cfg, ok := r.roleBase[role]; ok {
		return cfg, nil
	}
	data, err := r.roleData(role)
	if err != nil {
		return igntypes.Config{}, err
	}
	src, err := execute("role.yaml.tmpl", data)
	if err != nil {
		return igntypes.Config{}, err
	}
	cfg, err := butane.Translate([]byte(src))
	if err != nil {
		return igntypes.Config{}, fmt.Errorf("%s Butane template: %w", role, err)
	}
	at, snips := spec.At("workers"), r.d.Spec.WorkerDefaults.Snippets
	if runsControlPlane(role) {
		at, snips = spec.At("controllers"), r.d.Spec.ControllerDefaults.Snippets
	}
	if cfg, err = r.withSnippets(cfg, at.Attr("snippets"), snips); err != nil {
		return igntypes.Config{}, err
	}
	if err := butane.Validate(cfg); err != nil {
		return igntypes.Config{}, fmt.Errorf("%s config: %w", role, err)
	}
	r.roleBase[role] = cfg
	return cfg, nil
}

// kubeletConfig is the machines' KubeletConfiguration: webhook authentication and authorization,
// no anonymous access, rotating client certificates, serving with a certificate the cluster CA
// signs (serverTLSBootstrap: the kubelet requests it, the kubelet-serving-approver checks it names
// only this node, the controller-manager signs it), which kube-apiserver verifies. A machine's
// drop-in (kubeletAddress) makes it serve only on the machine's own address.
func kubeletConfig(d *Cluster) ([]byte, error) {
	f := false
	t := true
	var readOnly int32
	cfg := kubeletv1beta1.KubeletConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		Authentication: kubeletv1beta1.KubeletAuthentication{
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: &f},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: &t},
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: path.Join(HostPKIDir, CACert)},
		},
		Authorization:            kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		CgroupDriver:             "systemd",
		ClusterDNS:               []string{d.DNSServiceIP},
		ClusterDomain:            d.ClusterDomain,
		ContainerRuntimeEndpoint: ContainerdSocket,
		ReadOnlyPort:             readOnly,
		RotateCertificates:       true,
		ServerTLSBootstrap:       true,
		StaticPodPath:            HostStaticPodDir,
		ResolverConfig:           ptr("/run/systemd/resolve/resolv.conf"),
		ProtectKernelDefaults:    true,
		// A pod cannot exhaust the node's process IDs.
		PodPidsLimit: ptr(int64(podPidsLimit)),
		// A container whose pod names no seccomp profile gets the container runtime's default one,
		// not none (privileged containers stay unconfined).
		SeccompDefault:  ptr(true),
		TLSMinVersion:   "VersionTLS12",
		TLSCipherSuites: TLSCipherSuites,
	}
	return yaml.Marshal(cfg)
}

func ptr[T any](v T) *T { return &v }

// podPidsLimit is how many processes a pod may run at once.
const podPidsLimit = 4096

// kubeletAddress is the kubelet configuration drop-in that makes the kubelet serve, and answer
// health checks, on the machine's own address only: the one part of the kubelet's configuration
// that differs between the machines of a role.
func kubeletAddress(ip string) hostFile {
	return hostFile{Path: HostKubeletAddressConfig, Mode: 0o600, Text: fmt.Sprintf(
		"apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\naddress: %s\nhealthzBindAddress: %s\n", ip, ip)}
}

// machineFiles are the files only this machine gets.
func (r *machineRenderer) machineFiles(m Machine) ([]hostFile, error) {
	token, err := r.bootstrapKubeconfig(MachineTokenOwner(m.Name))
	if err != nil {
		return nil, err
	}
	files := []hostFile{kubeletAddress(m.IP), token}
	if !runsControlPlane(m.Role) {
		return files, nil
	}
	etcd, err := etcdConfig(r.d, m)
	if err != nil {
		return nil, err
	}
	files = append(files, hostFile{Path: HostEtcdConfig, Mode: 0o600, Text: string(etcd)})
	// The apiserver's serving certificate and key and the etcd member's are this controller's own.
	files = append(files, r.pkiFiles(controlPlane, &m)...)
	// Control-plane clients on a controller talk to that controller's own apiserver.
	for _, c := range credentials {
		if c.hostKubeconfig == "" {
			continue
		}
		data, err := c.kubeconfigAt(r.d, m.APIServerURL, r.pki)
		if err != nil {
			return nil, err
		}
		files = append(files, hostFile{Path: c.hostKubeconfig, Mode: 0o600, Text: string(data), Secret: true})
	}
	// A static control plane runs on every controller; a self-hosted one starts from the bootstrap
	// control plane on the first controller, which the pivot removes once it has taken over.
	var pods []Asset
	switch {
	case !r.d.SelfHosted:
		pods, err = staticPods(r.d, m)
	case m.Name == r.d.BootstrapHost().Name:
		pods, err = bootstrapControlPlane(r.d)
	}
	if err != nil {
		return nil, err
	}
	// Every controller of a self-hosted cluster runs the checkpointer.
	if r.d.SelfHosted && m.Role == spec.RoleController {
		pod, err := checkpointerPod(r.d, m)
		if err != nil {
			return nil, err
		}
		pods = append(pods, pod)
	}
	for _, p := range pods {
		files = append(files, hostFile{Path: path.Join(HostStaticPodDir, path.Base(p.Path)), Mode: 0o600, Text: string(p.Data)})
	}
	return files, nil
}

// bootstrapKubeconfig is the kubeconfig with owner's bootstrap token that a kubelet joins with.
// Machines' bootstrap kubeconfigs differ only in their token: encode once, then fill it in, quoted
// so that YAML reads any token as a string.
func (r *machineRenderer) bootstrapKubeconfig(owner string) (hostFile, error) {
	t, ok := r.d.tokens[owner]
	if !ok {
		return hostFile{}, fmt.Errorf("%s has no bootstrap token", owner)
	}
	shared, err := r.sharedBootstrapKubeconfig()
	if err != nil {
		return hostFile{}, err
	}
	text := strings.Replace(shared, "token: "+bootstrapTokenMark, "token: \""+t.String()+"\"", 1)
	return hostFile{Path: HostBootstrapKubeletConf, Mode: 0o600, Text: text, Secret: true}, nil
}

// bootstrapTokenMark stands for a machine's bootstrap token in the shared bootstrap kubeconfig.
const bootstrapTokenMark = "LIFTOFF-BOOTSTRAP-TOKEN"

// ignition renders one machine's Ignition config: the role's shared config, translated and checked
// once per render, plus this machine's own files, plus its snippets. The machine's files are built
// as Ignition types directly because this runs once per machine and Butane's YAML round trip would
// dominate a thousand-machine render.
func (r *machineRenderer) ignition(m Machine, node spec.Node) ([]byte, []hostFile, error) {
	base, err := r.base(m.Role)
	if err != nil {
		return nil, nil, err
	}
	files, err := r.machineFiles(m)
	if err != nil {
		return nil, nil, err
	}
	files, secrets := r.splitSecrets(files)
	if secrets != nil {
		secrets = append(append([]hostFile{}, r.roleSecrets[m.Role]...), secrets...)
	}
	files = append([]hostFile{
		{Path: "/etc/hostname", Mode: 0o644, Text: m.Name},
		{Path: "/etc/kubernetes/kubelet.env", Mode: 0o644, Text: fmt.Sprintf("NODE_NAME=%s\nNODE_IP=%s\nNODE_LABELS=%s\nNODE_TAINTS=%s\n",
			m.Name, m.IP, m.NodeLabels(), strings.Join(m.Taints, ","))},
	}, files...)
	own := igntypes.Config{Ignition: igntypes.Ignition{Version: base.Ignition.Version}}
	for _, f := range files {
		file, err := butane.File(f.Path, f.Mode, []byte(f.Text))
		if err != nil {
			return nil, nil, fmt.Errorf("machine %s: %s: %w", m.Name, f.Path, err)
		}
		if f.Owner != 0 {
			file.User, file.Group = igntypes.NodeUser{ID: &f.Owner}, igntypes.NodeGroup{ID: &f.Owner}
		}
		own.Storage.Files = append(own.Storage.Files, file)
	}
	// With shared role configs, the machine's config starts from its own files alone.
	ref, shared := r.roleRefs[m.Role]
	cfg := own
	if !shared {
		cfg = butane.Add(base, own)
	}
	if r.platform != nil {
		add, err := r.platform(node)
		if err != nil {
			return nil, nil, fmt.Errorf("machine %s: %w", m.Name, err)
		}
		if add != nil {
			cfg = butane.Add(cfg, *add)
		}
	}
	cfg, err = r.withSnippets(cfg, spec.MachinePath(node).Attr("snippets"), node.Snippets)
	if err != nil {
		return nil, nil, err
	}
	if shared {
		// At boot Ignition merges the role's config into this one, the role's entries winning where
		// both have one: that is the config rendered here only if this machine's own entries
		// (its snippets', its platform's) are all new. A machine whose snippet changes an entry of
		// its role gets its whole config instead.
		if butane.Disjoint(base, cfg) {
			cfg.Ignition.Config.Merge = []igntypes.Resource{ref}
		} else {
			cfg = butane.Merge(base, cfg)
		}
	}
	// The role's config was checked once; this machine's own files and its platform's additions are
	// built from validated names and addresses at paths liftoff chooses, so the merge cannot
	// conflict. A user's snippet can, so a machine with snippets gets the whole check. Tests parse
	// every rendered config in full.
	var out []byte
	if len(node.Snippets) > 0 {
		out, err = butane.Marshal(cfg)
	} else {
		out, err = json.Marshal(cfg)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("machine %s: rendered Ignition does not pass Ignition's own check: %w", m.Name, err)
	}
	return out, secrets, nil
}

// shareRoleConfigs renders the shared config of each role the machines have, to be served at
// url(role), and keeps the references that the machines' configs merge them by.
func (r *machineRenderer) shareRoleConfigs(machines []Machine, url func(role string) string) ([]Asset, error) {
	if !r.d.Spec.FetchesSecrets() {
		return nil, fmt.Errorf("shared role configs need machine_secrets.server: a role's config goes to every machine of the role, so it may hold no secret")
	}
	r.roleRefs = map[string]igntypes.Resource{}
	var out []Asset
	for _, m := range machines {
		if _, done := r.roleRefs[m.Role]; done {
			continue
		}
		base, err := r.base(m.Role)
		if err != nil {
			return nil, err
		}
		// Encoded as Go encodes Ignition's types, which is also how matchbox serves a raw config (it
		// decodes and encodes it again): the sha512 is that of the bytes a machine receives.
		data, err := json.Marshal(base)
		if err != nil {
			return nil, err
		}
		sum := sha512.Sum512(data)
		source, hash := url(m.Role), "sha512-"+hex.EncodeToString(sum[:])
		r.roleRefs[m.Role] = igntypes.Resource{Source: &source, Verification: igntypes.Verification{Hash: &hash}}
		out = append(out, Asset{Path: path.Join(OutRoleIgnitionDir, m.Role+".ign"), Kind: KindRoleIgnition, Role: m.Role, Mode: 0o644, Data: data})
	}
	return out, nil
}

// withSnippets merges the user's Butane snippets, written at field at, into cfg in their order:
// the one place a render takes in snippets. Validation translated them (spec.Cluster.Snippet);
// they are not translated again.
func (r *machineRenderer) withSnippets(cfg igntypes.Config, at spec.Path, snippets []string) (igntypes.Config, error) {
	for i, s := range snippets {
		sc, ok := r.d.Spec.Snippet(s)
		if !ok {
			return cfg, fmt.Errorf("%s: the snippet was not validated: render a spec that passed spec.Complete", at.Index(i))
		}
		cfg = butane.Merge(cfg, sc)
	}
	return cfg, nil
}

// pool renders a worker pool's Ignition config: the worker role's config with the machine identity
// found at boot (liftoff-node-identity) rather than written per machine. Pools are few, so each is
// translated from Butane and checked whole.
func (r *machineRenderer) pool(m Machine, p spec.WorkerPool) ([]byte, error) {
	base, err := r.base(spec.RoleWorker)
	if err != nil {
		return nil, err
	}
	script, err := templates.FS.ReadFile("butane/liftoff-node-identity.sh")
	if err != nil {
		return nil, err
	}
	token, err := r.bootstrapKubeconfig(PoolTokenOwner(m.Name))
	if err != nil {
		return nil, err
	}
	variant, version := butane.Header(r.d.Spec.OS)
	src, err := execute("pool.yaml.tmpl", map[string]any{
		"Variant": variant, "Version": version, "Machine": m, "BootstrapKubeconfig": token,
		"IdentityScript": HostIdentityScript, "IdentityScriptText": string(script), "IdentityEnv": HostIdentityEnv,
	})
	if err != nil {
		return nil, err
	}
	own, err := butane.Translate([]byte(src))
	if err != nil {
		return nil, fmt.Errorf("worker pool %s: %w", m.Name, err)
	}
	cfg, err := r.withSnippets(butane.Merge(base, own), spec.Block("worker_pool", p.Name).Attr("snippets"), p.Snippets)
	if err != nil {
		return nil, err
	}
	out, err := butane.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("worker pool %s: rendered Ignition does not pass Ignition's own check: %w", m.Name, err)
	}
	return out, nil
}
