// Package etcdtest runs real etcd members for tests as a render configures them: each etcd
// member's rendered configuration and certificates, taken from its machine's Ignition config, laid
// out under a root directory of its own that stands for the machine's /, on loopback addresses.
// etcd is the real program at the pinned version (testbin).
package etcdtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/apiservertest"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/render"
	"github.com/liftoff-k8s/liftoff/spec"
	"github.com/liftoff-k8s/liftoff/templates"
)

// LoopbackSpec is the spec of a cluster named name whose controllers c1…cN have loopback
// addresses with etcd's ports free, so that tests running at once on one host do not collide.
func LoopbackSpec(t testing.TB, name string, controllers int) string {
	t.Helper()
	prefix := FreePrefix(t, controllers)
	var b strings.Builder
	fmt.Fprintf(&b, "cluster %q {\n  api_server = \"https://%s10:6443\"\n", name, prefix)
	for i := 1; i <= controllers; i++ {
		fmt.Fprintf(&b, "  controller \"c%d\" {\n    ip = \"%s%d\"\n  }\n", i, prefix, 10+i)
	}
	b.WriteString("}\n")
	return b.String()
}

// FreePrefix picks a loopback prefix "127.A.B." whose addresses .11 to .10+controllers have etcd's
// ports free, so that tests running at once on one host do not collide.
func FreePrefix(t testing.TB, controllers int) string {
	t.Helper()
	for range 20 {
		prefix := fmt.Sprintf("127.%d.%d.", 100+rand.IntN(150), rand.IntN(256))
		if portsFree(prefix, controllers) {
			return prefix
		}
	}
	t.Fatal("found no loopback addresses with etcd's ports free")
	return ""
}

func portsFree(prefix string, controllers int) bool {
	for i := 1; i <= controllers; i++ {
		for _, port := range []int{generator.EtcdClientPort, generator.EtcdPeerPort} {
			ln, err := net.Listen("tcp", net.JoinHostPort(fmt.Sprintf("%s%d", prefix, 10+i), fmt.Sprint(port)))
			if err != nil {
				return false
			}
			ln.Close()
		}
	}
	return true
}

// Render validates and renders the spec src and writes the render into a new output directory,
// as `liftoff render` does, returning the directory and the render.
func Render(t testing.TB, src string) (dir string, res *generator.Result) {
	t.Helper()
	c, diags := spec.Parse([]byte(src), "cluster.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err = render.Cluster(full, generator.Options{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "out")
	if err := outdir.Write(dir, res.Assets); err != nil {
		t.Fatal(err)
	}
	return dir, res
}

// Member is one etcd member laid out for a test.
type Member struct {
	Name string
	// Root stands for the machine's /: it holds the member's certificates, its rendered
	// configuration with every host path pointed into Root, and its data directory.
	Root      string
	ClientURL string
	kill      func()
	starts    int
}

// Members lays out the etcd member of every controller of a render under base, one root each.
func Members(t testing.TB, assets *generator.Assets, base string) []*Member {
	t.Helper()
	var out []*Member
	for _, a := range assets.Files {
		if a.Kind != generator.KindIgnition || a.Role != spec.RoleController {
			continue
		}
		out = append(out, layout(t, a.Node, a.Data, filepath.Join(base, a.Node)))
	}
	return out
}

// layout writes a member's files from its machine's Ignition config as Ignition places them.
func layout(t testing.TB, name string, ignition []byte, root string) *Member {
	t.Helper()
	m := &Member{Name: name, Root: root}
	var cfg map[string]any
	if err := yaml.Unmarshal(ignitionFile(t, ignition, generator.HostEtcdConfig), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["data-dir"] = m.Path(cfg["data-dir"].(string))
	// The certificates and keys the configuration names, from the machine's Ignition config.
	for _, sec := range []string{"client-transport-security", "peer-transport-security"} {
		tls := cfg[sec].(map[string]any)
		for _, k := range []string{"cert-file", "key-file", "trusted-ca-file"} {
			host := tls[k].(string)
			writeFile(t, m.Path(host), ignitionFile(t, ignition, host), 0o600)
			tls[k] = m.Path(host)
		}
	}
	// Test only: members here share the host's loopback, where every peer connection comes from
	// 127.0.0.1 and cannot match the member's certificate. The certificate is still required and
	// checked against the etcd CA; the local cluster harness runs members on their own addresses
	// with the check on.
	cfg["peer-transport-security"].(map[string]any)["skip-client-san-verification"] = true
	m.ClientURL = cfg["advertise-client-urls"].(string)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, m.Path(generator.HostEtcdConfig), out, 0o600)
	if err := os.MkdirAll(m.Path(generator.HostEtcdDataDir), 0o700); err != nil {
		t.Fatal(err)
	}
	script, err := templates.FS.ReadFile(generator.EtcdJoinScriptTemplate)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, m.Path(generator.HostEtcdJoinScript), script, 0o755)
	return m
}

// Path is the machine path p inside the member's root.
func (m *Member) Path(p string) string { return filepath.Join(m.Root, p) }

// DataDir is the member's data directory.
func (m *Member) DataDir() string { return m.Path(generator.HostEtcdDataDir) }

// Config is the member's configuration file at the machine path p, as laid out.
func (m *Member) Config(t testing.TB, p string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(m.Path(p))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", m.Path(p), err)
	}
	return cfg
}

// Start starts etcd on the configuration file at the machine path config. It does not wait.
func (m *Member) Start(t testing.TB, config string) {
	t.Helper()
	m.starts++
	log := m.Path(fmt.Sprintf("etcd-%d.log", m.starts))
	m.kill = apiservertest.StartProcess(t, fmt.Sprintf("%s etcd (start %d)", m.Name, m.starts), log,
		testbin.MustPath(t, "etcd"), "--config-file", m.Path(config))
}

// Boot starts the member as its etcd unit does: liftoff-etcd-join writes the configuration etcd
// starts with from the rendered one, then etcd starts on it. It returns what the script said.
func (m *Member) Boot(t testing.TB) string {
	t.Helper()
	out, err := m.Join(t)
	if err != nil {
		t.Fatalf("%s: liftoff-etcd-join: %v\n%s", m.Name, err, out)
	}
	m.Start(t, generator.HostEtcdStartConfig)
	return out
}

// Join runs liftoff-etcd-join as the etcd unit does before etcd starts and returns its output.
func (m *Member) Join(t testing.TB) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, m.Path(generator.HostEtcdJoinScript),
		m.Path(generator.HostEtcdConfig), m.Path(generator.HostEtcdStartConfig)).CombinedOutput()
	return string(out), err
}

// Kill kills the member's etcd, as a machine lost at once.
func (m *Member) Kill() {
	if m.kill != nil {
		m.kill()
	}
}

// Client connects to the rendered cluster in dir as the apiservers do, with their etcd client
// certificate, to the given endpoints.
func Client(t testing.TB, dir string, endpoints ...string) *clientv3.Client {
	t.Helper()
	tlsCfg, err := bootstrap.EtcdClientTLS(filepath.Join(dir, generator.OutPKIDir))
	if err != nil {
		t.Fatal(err)
	}
	return client(t, tlsCfg, endpoints)
}

func client(t testing.TB, tlsCfg *tls.Config, endpoints []string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitHealthy waits until every endpoint answers a status request and knows a leader, failing the
// test after two minutes with the last thing missing.
func WaitHealthy(t testing.TB, cli *clientv3.Client, endpoints ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var missing error
	for {
		missing = nil
		for _, ep := range endpoints {
			sctx, scancel := context.WithTimeout(ctx, 3*time.Second)
			st, err := cli.Status(sctx, ep)
			scancel()
			if err != nil {
				missing = fmt.Errorf("%s: %w", ep, err)
				break
			}
			if st.Leader == 0 {
				missing = fmt.Errorf("%s knows no leader", ep)
				break
			}
		}
		if missing == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("etcd not healthy within 2m: %v", missing)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Endpoints are the members' client URLs.
func Endpoints(members []*Member) []string {
	var out []string
	for _, m := range members {
		out = append(out, m.ClientURL)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

// ignitionFile is the content of the file at path in an Ignition config.
func ignitionFile(t testing.TB, raw []byte, path string) []byte {
	t.Helper()
	cfg, _, err := ign.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Storage.Files {
		if f.Path != path || f.Contents.Source == nil {
			continue
		}
		d, err := dataurl.DecodeString(*f.Contents.Source)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data := d.Data
		if f.Contents.Compression != nil && *f.Contents.Compression == "gzip" {
			r, err := gzip.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if data, err = io.ReadAll(r); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return data
	}
	t.Fatalf("%s is not in the Ignition config", path)
	return nil
}
