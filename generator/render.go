// Package generator turns a validated cluster spec into every file a cluster needs at first boot:
// the PKI, kubeconfigs, manifests and one Ignition config per machine.
//
// It is pure: the spec, the clock, a source of randomness and the key material of an earlier render
// go in; assets come out. The same inputs give the same bytes.
package generator

import (
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"sync"
	"time"

	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"

	"github.com/liftoff-k8s/liftoff/generator/pki"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Options are a render's inputs besides the spec.
type Options struct {
	// Now is the time certificates are issued at and checked against.
	Now time.Time
	// Rand is the source of key material; crypto/rand when nil.
	Rand io.Reader
	// Existing is an earlier render's output (an output directory), whose key material is reused.
	Existing fs.FS
	// RotateTokens are owners (MachineTokenOwner, PoolTokenOwner) whose bootstrap token is replaced
	// by a new one instead of reused.
	RotateTokens []string
	// MachineConfig, when set, returns what the machine's platform adds to its Ignition config (a
	// network unit, a volume's mount): it is merged into the machine's config before the user's
	// snippets and before the config is encoded, so no config is decoded and encoded again.
	MachineConfig func(n spec.Node) (*igntypes.Config, error)
	// RoleConfigURL, when set, is where machines fetch their role's shared Ignition config (the
	// platform's, when it serves them; otherwise the spec's role_config_url, if any): each
	// role's config becomes an asset of KindRoleIgnition for the platform to serve at
	// RoleConfigURL(role), and a machine's config holds only its own files and merges its role's,
	// verified by its sha512. A role's config goes to every machine of the role, so it holds no
	// secret: this needs machine_secrets.server.
	RoleConfigURL func(role string) string
}

// Result is a render's output.
type Result struct {
	Assets  *Assets
	Cluster *Cluster
	// Changes lists key material that was created or replaced, and why.
	Changes []Change
}

// EncryptionKeyPath holds the key kube-apiserver encrypts Secrets at rest with, so a re-render keeps it.
const EncryptionKeyPath = "pki/secrets-encryption.key"

// Render renders a cluster. c must have passed spec.Complete.
func Render(c *spec.Cluster, opts Options) (*Result, error) {
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now.IsZero() {
		return nil, fmt.Errorf("render: Options.Now is required")
	}
	d, err := newCluster(c)
	if err != nil {
		return nil, err
	}
	keys, err := newKeyring(c, opts.Existing, opts.Now, opts.Rand)
	if err != nil {
		return nil, err
	}
	p, err := keys.issue(d)
	if err != nil {
		return nil, err
	}
	ttl, err := tokenTTL(c)
	if err != nil {
		return nil, err
	}
	if d.tokens, err = keys.bootstrapTokens(d, ttl, opts.RotateTokens); err != nil {
		return nil, err
	}
	d.BootstrapTokens = acceptedTokens(d.tokens, opts.Now)
	if d.EncryptionKey, err = keys.encryptionKey(); err != nil {
		return nil, err
	}
	out := &Assets{Cluster: d.Name}
	out.Add(keys.assets...)
	d.CACertPEM = string(pki.EncodeCert(p["ca"].Cert))

	for _, c := range credentials {
		if c.kubeconfig == "" {
			continue
		}
		data, err := c.kubeconfigAt(d, d.APIServerURL, p)
		if err != nil {
			return nil, err
		}
		out.Add(Asset{Path: path.Join(OutAuthDir, c.kubeconfig), Kind: KindKubeconfig, Mode: 0o600, Data: data})
	}

	manifests, err := renderManifests(d)
	if err != nil {
		return nil, err
	}
	out.Add(manifests...)

	roleURL := opts.RoleConfigURL
	if roleURL == nil && c.RoleConfigURL != "" {
		roleURL = c.RoleConfigAt
	}
	ign, err := renderMachines(d, p, out, opts.MachineConfig, roleURL)
	if err != nil {
		return nil, err
	}
	out.Add(ign...)
	out.Sort()
	return &Result{Assets: out, Cluster: d, Changes: keys.changes}, nil
}

// renderMachines renders every machine's Ignition config, spreading machines over the CPUs.
func renderMachines(d *Cluster, p issued, rendered *Assets, platform func(spec.Node) (*igntypes.Config, error), roleURL func(string) string) ([]Asset, error) {
	files := make(map[string][]byte, len(rendered.Files))
	for _, a := range rendered.Files {
		files[a.Path] = a.Data
	}
	kc, err := kubeletConfig(d)
	if err != nil {
		return nil, err
	}
	r := &machineRenderer{d: d, pki: p, files: files, roleBase: map[string]igntypes.Config{}, roleSecrets: map[string][]hostFile{}, kubeletConfig: string(kc), platform: platform}
	r.sharedBootstrapKubeconfig = sync.OnceValues(func() (string, error) {
		data, err := kubeconfig(d.Name, d.APIServerURL, []byte(d.CACertPEM), "kubelet-bootstrap", nil, bootstrapTokenMark)
		if err == nil && !strings.Contains(string(data), "token: "+bootstrapTokenMark+"\n") {
			err = fmt.Errorf("the bootstrap kubeconfig does not hold its token as expected:\n%s", data)
		}
		return string(data), err
	})
	// Role bases are shared; build them before the workers start.
	roles := []string{spec.RoleController, spec.RoleWorker}
	var machines []Machine
	if d.Bootstrap != nil {
		roles = append(roles, spec.RoleBootstrap)
		machines = append(machines, *d.Bootstrap)
	}
	for _, role := range roles {
		if _, err := r.base(role); err != nil {
			return nil, err
		}
	}
	// In the order of the spec's Machines.
	nodes := d.Spec.Machines()
	machines = append(append(machines, d.Controllers...), d.Workers...)
	var out []Asset
	if roleURL != nil {
		if out, err = r.shareRoleConfigs(machines, roleURL); err != nil {
			return nil, err
		}
	}
	shared := len(out)
	out = append(out, make([]Asset, len(machines))...)
	packs := make([]Asset, len(machines))
	errs := make([]error, len(machines))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m := machines[i]
				data, secrets, err := r.ignition(m, nodes[i])
				if err == nil && secrets != nil {
					var pack []byte
					pack, err = secretsPack(secrets)
					packs[i] = Asset{Path: MachineSecretsPath(m.Name), Kind: KindMachineSecrets, Node: m.Name, Role: m.Role, Mode: 0o600, Data: pack}
				}
				errs[i] = err
				out[shared+i] = Asset{Path: path.Join(OutIgnitionDir, m.Name+".ign"), Kind: KindIgnition, Node: m.Name, Role: m.Role, Mode: 0o600, Data: data}
			}
		}()
	}
	for i := range machines {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if d.Spec.FetchesSecrets() {
		out = append(out, packs...)
		server, err := secretsServerAsset(d, machines)
		if err != nil {
			return nil, err
		}
		out = append(out, server)
	}
	for i, m := range d.Pools {
		data, err := r.pool(m, d.Spec.WorkerPools[i])
		if err != nil {
			return nil, err
		}
		out = append(out, Asset{Path: path.Join(OutPoolIgnitionDir, m.Name+".ign"), Kind: KindIgnition, Pool: m.Name, Role: m.Role, Mode: 0o600, Data: data})
	}
	return out, nil
}
