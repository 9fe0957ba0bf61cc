package generator

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"github.com/vincent-petithory/dataurl"

	"github.com/liftoff-k8s/liftoff/generator/pki"
	"github.com/liftoff-k8s/liftoff/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// renderTime is when test renders happen: inside the golden certificates' validity.
var renderTime = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func loadSpec(t testing.TB, file string) *spec.Cluster {
	t.Helper()
	c, diags := spec.ReadFile(file)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func parseSpec(t testing.TB, src string) *spec.Cluster {
	t.Helper()
	c, diags := spec.Parse([]byte(src), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// toFS turns assets into a file system, as an output directory would hold them.
func toFS(as *Assets) fstest.MapFS {
	m := fstest.MapFS{}
	for _, a := range as.Files {
		m[a.Path] = &fstest.MapFile{Data: a.Data, Mode: a.Mode}
	}
	m[IndexPath] = &fstest.MapFile{Data: as.IndexJSON(), Mode: 0o644}
	return m
}

func render(t testing.TB, c *spec.Cluster, existing fs.FS, now time.Time) *Result {
	t.Helper()
	res, err := Render(c, Options{Now: now, Existing: existing})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestGolden renders the example cluster over the golden output directory, whose key material it
// reuses, and requires every byte to match: rendering is deterministic and golden files show any
// change to rendered output in review. Run with -update to accept a change.
func TestGolden(t *testing.T) {
	golden := filepath.Join("testdata", "golden", "demo")
	var existing fs.FS
	if _, err := os.Stat(golden); err == nil {
		existing = os.DirFS(golden)
	} else if !*update {
		t.Fatalf("%s is missing; run go test ./generator -run TestGolden -update", golden)
	}
	res := render(t, loadSpec(t, "../examples/demo/cluster.hcl"), existing, renderTime)
	if *update {
		os.RemoveAll(golden)
		for _, a := range res.Assets.Files {
			p := filepath.Join(golden, a.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, a.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(golden, IndexPath), res.Assets.IndexJSON(), 0o644)
		return
	}
	for _, ch := range res.Changes {
		t.Errorf("re-render changed %s: %s", ch.Path, ch.Reason)
	}
	want := map[string]bool{}
	filepath.WalkDir(golden, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			rel, _ := filepath.Rel(golden, p)
			want[filepath.ToSlash(rel)] = true
		}
		return err
	})
	delete(want, IndexPath)
	for _, a := range res.Assets.Files {
		g, err := os.ReadFile(filepath.Join(golden, a.Path))
		if err != nil {
			t.Errorf("%s is rendered but not golden (run with -update)", a.Path)
			continue
		}
		delete(want, a.Path)
		if string(g) != string(a.Data) {
			t.Errorf("%s differs from golden (run with -update and review the diff)", a.Path)
		}
	}
	for p := range want {
		t.Errorf("%s is golden but no longer rendered", p)
	}
	if g, _ := os.ReadFile(filepath.Join(golden, IndexPath)); string(g) != string(res.Assets.IndexJSON()) {
		t.Errorf("index.json differs from golden")
	}
}

func TestRenderIsRepeatable(t *testing.T) {
	c := loadSpec(t, "../examples/demo/cluster.hcl")
	first := render(t, c, nil, renderTime)
	// An hour later: within the machines' bootstrap token TTL, after which their tokens leave
	// the manifests (TestBootstrapTokens).
	second := render(t, c, toFS(first.Assets), renderTime.Add(time.Hour))
	if len(second.Changes) != 0 {
		t.Fatalf("second render changed key material: %+v", second.Changes)
	}
	if len(first.Assets.Files) != len(second.Assets.Files) {
		t.Fatalf("%d files then %d", len(first.Assets.Files), len(second.Assets.Files))
	}
	for i, a := range first.Assets.Files {
		if b := second.Assets.Files[i]; a.Path != b.Path || string(a.Data) != string(b.Data) || a.Mode != b.Mode {
			t.Errorf("%s differs between renders", a.Path)
		}
	}
}

func TestAssetsAreListedAndKeysPrivate(t *testing.T) {
	res := render(t, loadSpec(t, "../examples/demo/cluster.hcl"), nil, renderTime)
	seen := map[string]bool{}
	for _, a := range res.Assets.Files {
		if seen[a.Path] {
			t.Errorf("%s rendered twice", a.Path)
		}
		seen[a.Path] = true
		switch a.Kind {
		case KindPrivateKey, KindKubeconfig, KindBootstrapToken, KindIgnition:
			if a.Mode != 0o600 {
				t.Errorf("%s (%s) has mode %o, want 0600", a.Path, a.Kind, a.Mode)
			}
		}
		if a.Kind == KindPrivateKey && !strings.Contains(string(a.Data), "PRIVATE KEY") {
			t.Errorf("%s is not a PEM private key", a.Path)
		}
	}
	for _, want := range []string{"pki/ca.crt", "pki/ca.key", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "pki/sa.key", "pki/sa.pub",
		"pki/apiserver/node1.crt", "pki/apiserver/node3.key", "pki/apiserver-kubelet-client.crt", "pki/apiserver-etcd-client.crt", "pki/front-proxy-client.crt",
		"pki/admin.crt", "pki/controller-manager.crt", "pki/scheduler.crt",
		"pki/etcd/node1/server.crt", "pki/etcd/node2/peer.key", "pki/etcd/node3/server.key",
		"auth/admin.conf", "auth/controller-manager.conf", "auth/scheduler.conf",
		"ignition/node1.ign", "ignition/node4.ign", "pki/bootstrap-tokens/machines/node1", "pki/bootstrap-tokens/machines/node4"} {
		if !seen[want] {
			t.Errorf("%s not rendered", want)
		}
	}
}

func certAt(t *testing.T, as *Assets, p string) *x509.Certificate {
	t.Helper()
	a := as.Get(p)
	if a == nil {
		t.Fatalf("%s not rendered", p)
	}
	c, err := pki.ParseCert(a.Data)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return c
}

func TestCertificateChainsUsagesAndSANs(t *testing.T) {
	res := render(t, loadSpec(t, "../examples/demo/cluster.hcl"), nil, renderTime)
	as := res.Assets
	pool := func(p string) *x509.CertPool {
		cp := x509.NewCertPool()
		cp.AddCert(certAt(t, as, p))
		return cp
	}
	cases := []struct {
		cert, ca string
		usage    x509.ExtKeyUsage
		cn       string
		org      []string
		dns      []string
		ips      []string
	}{
		// Each controller's apiserver certificate names that controller only, beside the API.
		{"pki/apiserver/node1.crt", "pki/ca.crt", x509.ExtKeyUsageServerAuth, "kube-apiserver", nil,
			[]string{"api.demo.example.com", "node1.example.com", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			[]string{"10.0.0.11", "10.3.0.1", "127.0.0.1"}},
		{"pki/apiserver/node2.crt", "pki/ca.crt", x509.ExtKeyUsageServerAuth, "kube-apiserver", nil,
			[]string{"api.demo.example.com", "node2.example.com", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			[]string{"10.0.0.12", "10.3.0.1", "127.0.0.1"}},
		{"pki/apiserver-kubelet-client.crt", "pki/ca.crt", x509.ExtKeyUsageClientAuth, UserAPIServerKubelet, nil, nil, nil},
		{"pki/apiserver-etcd-client.crt", "pki/etcd/ca.crt", x509.ExtKeyUsageClientAuth, UserAPIServerEtcd, nil, nil, nil},
		{"pki/front-proxy-client.crt", "pki/front-proxy-ca.crt", x509.ExtKeyUsageClientAuth, UserFrontProxyClient, nil, nil, nil},
		{"pki/admin.crt", "pki/ca.crt", x509.ExtKeyUsageClientAuth, UserAdmin, []string{"liftoff:cluster-admins"}, nil, nil},
		{"pki/super-admin.crt", "pki/ca.crt", x509.ExtKeyUsageClientAuth, UserSuperAdmin, []string{"system:masters"}, nil, nil},
		{"pki/controller-manager.crt", "pki/ca.crt", x509.ExtKeyUsageClientAuth, UserControllerManager, nil, nil, nil},
		{"pki/scheduler.crt", "pki/ca.crt", x509.ExtKeyUsageClientAuth, UserScheduler, nil, nil, nil},
		{"pki/etcd/node1/server.crt", "pki/etcd/ca.crt", x509.ExtKeyUsageServerAuth, "node1", nil, []string{"node1.example.com"}, []string{"10.0.0.11"}},
		// etcd's gateway dials its own member with the server certificate, so it is a client too.
		{"pki/etcd/node1/server.crt", "pki/etcd/ca.crt", x509.ExtKeyUsageClientAuth, "node1", nil, []string{"node1.example.com"}, []string{"10.0.0.11"}},
		{"pki/etcd/node2/peer.crt", "pki/etcd/ca.crt", x509.ExtKeyUsageClientAuth, "node2", nil, []string{"node2.example.com"}, []string{"10.0.0.12"}},
		{"pki/etcd/node3/peer.crt", "pki/etcd/ca.crt", x509.ExtKeyUsageServerAuth, "node3", nil, []string{"node3.example.com"}, []string{"10.0.0.13"}},
	}
	for _, tc := range cases {
		t.Run(tc.cert, func(t *testing.T) {
			c := certAt(t, as, tc.cert)
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool(tc.ca), KeyUsages: []x509.ExtKeyUsage{tc.usage}, CurrentTime: renderTime}); err != nil {
				t.Errorf("does not verify against %s for %v: %v", tc.ca, tc.usage, err)
			}
			for _, other := range []string{"pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt"} {
				if other == tc.ca {
					continue
				}
				if _, err := c.Verify(x509.VerifyOptions{Roots: pool(other), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: renderTime}); err == nil {
					t.Errorf("also verifies against %s", other)
				}
			}
			if c.Subject.CommonName != tc.cn || !slices.Equal(c.Subject.Organization, tc.org) {
				t.Errorf("subject %v, want CN=%s O=%v", c.Subject, tc.cn, tc.org)
			}
			if !sameStrings(c.DNSNames, tc.dns) {
				t.Errorf("DNS SANs %v, want %v", c.DNSNames, tc.dns)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !sameStrings(ips, tc.ips) {
				t.Errorf("IP SANs %v, want %v", ips, tc.ips)
			}
			if c.IsCA {
				t.Error("leaf is a CA")
			}
			if got := c.NotAfter.Sub(renderTime); got < 364*24*time.Hour || got > 366*24*time.Hour {
				t.Errorf("valid for %s, want one year", got)
			}
			if alg := pki.Algorithm(c.PublicKey); alg != "ecdsa-p256" {
				t.Errorf("key %s, want ecdsa-p256", alg)
			}
		})
	}
	for _, ca := range []string{"pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt"} {
		c := certAt(t, as, ca)
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("%s is not a signing CA", ca)
		}
		if c.MaxPathLen != 0 || !c.MaxPathLenZero {
			t.Errorf("%s may sign intermediate CAs (pathlen %d); want pathlen:0", ca, c.MaxPathLen)
		}
		if got := c.NotAfter.Sub(renderTime); got < 3649*24*time.Hour {
			t.Errorf("%s valid for %s, want ten years", ca, got)
		}
	}
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestRSAKeysWhenAsked(t *testing.T) {
	src, _ := os.ReadFile("../examples/demo/cluster.hcl")
	s := strings.Replace(string(src), `  controller "node1" {`, "  pki {\n    key_algorithm = \"rsa-2048\"\n  }\n  controller \"node1\" {", 1)
	res := render(t, parseSpec(t, s), nil, renderTime)
	for _, p := range []string{"pki/ca.crt", "pki/apiserver/node1.crt", "pki/etcd/node1/peer.crt"} {
		if alg := pki.Algorithm(certAt(t, res.Assets, p).PublicKey); alg != "rsa-2048" {
			t.Errorf("%s key is %s, want rsa-2048", p, alg)
		}
	}
}

func TestReRenderKeepsCAAndRenewsWhatChanged(t *testing.T) {
	src, _ := os.ReadFile("../examples/demo/cluster.hcl")
	c := parseSpec(t, string(src))
	first := render(t, c, nil, renderTime)
	prev := toFS(first.Assets)

	t.Run("a renamed machine re-issues only what names it", func(t *testing.T) {
		s := strings.Replace(string(src), `domain = "node3.example.com"`, `domain = "node3.lab.example.com"`, 1)
		res := render(t, parseSpec(t, s), prev, renderTime)
		var changed []string
		for _, ch := range res.Changes {
			changed = append(changed, ch.Path)
		}
		slices.Sort(changed)
		want := []string{"pki/apiserver/node3.crt", "pki/etcd/node3/peer.crt", "pki/etcd/node3/server.crt"}
		if !slices.Equal(changed, want) {
			t.Fatalf("changed %v, want %v", changed, want)
		}
		for _, p := range []string{"pki/ca.crt", "pki/ca.key", "pki/apiserver/node3.key", "pki/apiserver/node1.crt", "ignition/node4.ign", "pki/etcd/node1/server.crt"} {
			if string(res.Assets.Get(p).Data) != string(first.Assets.Get(p).Data) {
				t.Errorf("%s changed", p)
			}
		}
	})
	t.Run("certificates inside the renewal window are renewed by the same CA", func(t *testing.T) {
		later := renderTime.Add(340 * 24 * time.Hour)
		res := render(t, c, prev, later)
		if len(res.Changes) == 0 {
			t.Fatal("nothing renewed 25 days before expiry")
		}
		for _, ch := range res.Changes {
			if !strings.Contains(ch.Reason, "renewal window") {
				t.Errorf("%s: %s", ch.Path, ch.Reason)
			}
		}
		if string(res.Assets.Get("pki/ca.crt").Data) != string(first.Assets.Get("pki/ca.crt").Data) {
			t.Error("the CA changed")
		}
		ca := certAt(t, res.Assets, "pki/ca.crt")
		renewed := certAt(t, res.Assets, "pki/apiserver/node1.crt")
		if err := renewed.CheckSignatureFrom(ca); err != nil || !renewed.NotAfter.After(later.Add(300*24*time.Hour)) {
			t.Errorf("apiserver certificate not renewed under the same CA: %v, expires %s", err, renewed.NotAfter)
		}
		if string(res.Assets.Get("pki/apiserver/node1.key").Data) != string(first.Assets.Get("pki/apiserver/node1.key").Data) {
			t.Error("renewal replaced the key")
		}
	})
	t.Run("a CA key without its certificate is refused", func(t *testing.T) {
		broken := toFS(first.Assets)
		delete(broken, "pki/etcd/ca.crt")
		_, err := Render(c, Options{Now: renderTime, Existing: broken})
		if err == nil || !strings.Contains(err.Error(), "pki/etcd/ca.crt is missing") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a different CA algorithm is refused", func(t *testing.T) {
		s := strings.Replace(string(src), `  controller "node1" {`, "  pki {\n    key_algorithm = \"rsa-2048\"\n  }\n  controller \"node1\" {", 1)
		_, err := Render(parseSpec(t, s), Options{Now: renderTime, Existing: prev})
		if err == nil || !strings.Contains(err.Error(), "never replaces a CA") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestIgnitionParsesAndPlacesFiles(t *testing.T) {
	for _, os := range []string{"flatcar", "fcos"} {
		t.Run(os, func(t *testing.T) {
			src, _ := readFile("../examples/demo/cluster.hcl")
			s := strings.Replace(src, `os                  = "flatcar"`, fmt.Sprintf("os = %q", os), 1)
			res := render(t, parseSpec(t, s), nil, renderTime)
			for _, a := range res.Assets.Files {
				if a.Kind != KindIgnition {
					continue
				}
				cfg, rep, err := ign.Parse(a.Data)
				if err != nil || len(rep.Entries) > 0 {
					t.Fatalf("%s: %v %s", a.Path, err, rep.String())
				}
				files, owners := map[string]int{}, map[string]int{}
				for _, f := range cfg.Storage.Files {
					files[f.Path] = *f.Mode
					if f.User.ID != nil {
						owners[f.Path] = *f.User.ID
					}
				}
				wantFiles := map[string]int{"/etc/hostname": 0o644, "/etc/kubernetes/pki/ca.crt": 0o644,
					HostBootstrapKubeletConf: 0o600, HostKubeletConfig: 0o600, HostFetchScript: 0o755}
				if a.Role == "controller" {
					wantFiles[path.Join(HostPKIDir, CAKey)] = 0o600
					wantFiles[etcdMemberFile(EtcdPeerKey)] = 0o600
					wantFiles[etcdMemberFile(EtcdServerKey)] = 0o600
					wantFiles[HostEtcdConfig] = 0o600
					wantFiles[path.Join(HostStaticPodDir, "kube-apiserver.yaml")] = 0o600
					for _, p := range []string{HostAuthnConfig, HostAuditPolicy, HostAdmissionConfig, HostEncryptionConfig} {
						wantFiles[p] = 0o600
					}
				}
				// The break-glass credential and the encryption key's file stay in the output
				// directory; only controllers' apiservers get the key, inside their configuration.
				var placed []byte
				for _, f := range cfg.Storage.Files {
					placed = append(placed, DecodeSource(t, f.Contents.Source, f.Contents.Compression)...)
				}
				for _, secret := range []string{"pki/super-admin.key", "pki/super-admin.crt", EncryptionKeyPath} {
					data := bytes.TrimSpace(res.Assets.Get(secret).Data)
					if held := bytes.Contains(placed, data); held != (secret == EncryptionKeyPath && a.Role == "controller") {
						t.Errorf("%s holds %s: %v", a.Path, secret, held)
					}
				}
				// etcd's user owns its member's certificates and keys and nothing else; root owns
				// the rest, HostPKIDir above all.
				for p := range files {
					want := 0
					if strings.HasPrefix(p, HostEtcdMemberPKIDir+"/") && path.Base(p) != path.Base(EtcdCACert) {
						want = EtcdUID
					}
					if owners[p] != want {
						t.Errorf("%s: %s owned by uid %d, want %d", a.Path, p, owners[p], want)
					}
				}
				for p, mode := range wantFiles {
					if got, ok := files[p]; !ok || got != mode {
						t.Errorf("%s: %s mode %o present=%v, want %o", a.Path, p, got, ok, mode)
					}
				}
				if a.Role == "worker" {
					for p := range files {
						if strings.HasSuffix(p, ".key") {
							t.Errorf("%s: worker gets private key %s", a.Path, p)
						}
					}
				}
				units := map[string]bool{}
				for _, u := range cfg.Systemd.Units {
					units[u.Name] = u.Enabled != nil && *u.Enabled
				}
				if !units["kubelet.service"] || (a.Role == "controller") != units["etcd.service"] {
					t.Errorf("%s: units %v", a.Path, units)
				}
			}
		})
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func TestLoopbackClusterRenders(t *testing.T) {
	res := render(t, parseSpec(t, `cluster "local" {
  api_server = "https://127.0.0.11:6443"
  controller "c1" { ip = "127.0.0.11" }
  worker "w1" { ip = "127.0.0.21" }
}`), nil, renderTime)
	if certAt(t, res.Assets, "pki/etcd/c1/server.crt").IPAddresses[0].String() != "127.0.0.11" {
		t.Error("etcd certificate lacks the loopback address")
	}
}

func TestSelfHostedRender(t *testing.T) {
	src, _ := readFile("../examples/demo/cluster.hcl")
	s := strings.Replace(src, `control_plane       = "static"`, `control_plane = "self-hosted"`, 1)
	res := render(t, parseSpec(t, s), nil, renderTime)
	var bootstrap, static int
	for _, a := range res.Assets.Files {
		switch {
		case strings.HasPrefix(a.Path, OutStaticPodDir+"/"):
			static++
		case strings.HasPrefix(a.Path, OutBootstrapDir+"/"):
			bootstrap++
			if a.Kind != KindStaticPod || a.Role != "bootstrap" {
				t.Errorf("%s is %s/%s", a.Path, a.Kind, a.Role)
			}
		}
	}
	if static != 3 || bootstrap != 3 {
		t.Errorf("%d static pods and %d bootstrap pods, want 3 (the controllers' checkpointers) and 3", static, bootstrap)
	}
	// Step 1 of the pivot: the first controller's kubelet starts the bootstrap control plane; no
	// other machine gets a control-plane static pod. Every controller runs the checkpointer.
	for _, node := range []string{"node1", "node2", "node3", "node4"} {
		cfg, _, err := ign.Parse(res.Assets.Get("ignition/" + node + ".ign").Data)
		if err != nil {
			t.Fatal(err)
		}
		var pods []string
		for _, f := range cfg.Storage.Files {
			if strings.HasPrefix(f.Path, HostStaticPodDir+"/") {
				pods = append(pods, path.Base(f.Path))
			}
		}
		var want []string
		if node == "node1" {
			want = []string{"bootstrap-kube-apiserver.yaml", "bootstrap-kube-controller-manager.yaml", "bootstrap-kube-scheduler.yaml"}
		}
		if node != "node4" {
			want = append(want, Checkpointer+".yaml")
		}
		if !slices.Equal(pods, want) {
			t.Errorf("%s gets static pods %v, want %v", node, pods, want)
		}
	}
}

// TestBootstrapMachineRender renders a self-hosted cluster with a separate bootstrap machine: it
// runs the bootstrap control plane and a temporary etcd member of the same cluster as the
// controllers' (so raft carries the data over), and nothing permanent depends on it.
func TestBootstrapMachineRender(t *testing.T) {
	src, _ := readFile("../examples/demo/cluster.hcl")
	s := strings.Replace(src, `control_plane       = "static"`, `control_plane = "self-hosted"`, 1)
	s = strings.Replace(s, `  controller "node1" {`, "  bootstrap \"boot\" {\n    ip  = \"10.0.0.5\"\n    mac = \"52:54:00:a1:9c:a0\"\n  }\n  controller \"node1\" {", 1)
	res := render(t, parseSpec(t, s), nil, renderTime)
	boot := res.Assets.Get("ignition/boot.ign")
	if boot == nil || boot.Role != spec.RoleBootstrap || boot.Kind != KindIgnition {
		t.Fatalf("bootstrap machine's Ignition: %+v", boot)
	}
	cfg, _, err := ign.Parse(boot.Data)
	if err != nil {
		t.Fatal(err)
	}
	var pods []string
	etcdUnit := false
	for _, f := range cfg.Storage.Files {
		if strings.HasPrefix(f.Path, HostStaticPodDir+"/") {
			pods = append(pods, path.Base(f.Path))
		}
	}
	for _, u := range cfg.Systemd.Units {
		etcdUnit = etcdUnit || u.Name == "etcd.service"
	}
	if want := []string{"bootstrap-kube-apiserver.yaml", "bootstrap-kube-controller-manager.yaml", "bootstrap-kube-scheduler.yaml"}; !slices.Equal(pods, want) || !etcdUnit {
		t.Errorf("the bootstrap machine gets static pods %v (want %v) and etcd.service %v", pods, want, etcdUnit)
	}
	for _, node := range []string{"node1", "node2", "node3"} {
		cfg, _, err := ign.Parse(res.Assets.Get("ignition/" + node + ".ign").Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range cfg.Storage.Files {
			if strings.HasPrefix(f.Path, HostStaticPodDir+"/") && path.Base(f.Path) != Checkpointer+".yaml" {
				t.Errorf("controller %s gets static pod %s", node, f.Path)
			}
		}
	}
	if ips := certAt(t, res.Assets, "pki/etcd/boot/server.crt").IPAddresses; len(ips) != 1 || ips[0].String() != "10.0.0.5" {
		t.Errorf("the temporary etcd member's certificate is for %v", ips)
	}
	if ips := certAt(t, res.Assets, "pki/apiserver/boot.crt").IPAddresses; len(ips) != 3 || ips[0].String() != "10.0.0.5" {
		t.Errorf("the bootstrap machine's apiserver, which serves behind the endpoint, has a certificate for %v", ips)
	}
	bootstrapAPI := string(res.Assets.Get("bootstrap-manifests/bootstrap-kube-apiserver.yaml").Data)
	if !strings.Contains(bootstrapAPI, "--etcd-servers=https://10.0.0.5:2379,https://10.0.0.11:2379") {
		t.Errorf("the bootstrap apiserver does not use the temporary member first:\n%s", bootstrapAPI)
	}
	if strings.Contains(string(res.Assets.Get("manifests/10-kube-apiserver.yaml").Data), "10.0.0.5") {
		t.Error("the self-hosted apiserver depends on the bootstrap machine")
	}
	// Every member starts in one cluster with the temporary one.
	d, err := newCluster(parseSpec(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.EtcdInitialCluster, "boot=https://10.0.0.5:2380,node1=") || strings.Contains(d.EtcdServers, "10.0.0.5") {
		t.Errorf("initial cluster %q, servers %q", d.EtcdInitialCluster, d.EtcdServers)
	}

	// Only a self-hosted cluster pivots from a bootstrap machine.
	static := strings.Replace(s, `control_plane = "self-hosted"`, `control_plane = "static"`, 1)
	c, diags := spec.Parse([]byte(static), "test.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if _, err := spec.Complete(c); err == nil || !strings.Contains(err.Error(), "test.hcl:12: bootstrap.boot: Bootstrap machine without a pivot") {
		t.Errorf("a static spec with a bootstrap machine: %v", err)
	}
}

// DecodeSource is the content of an Ignition file given inline, as Ignition writes it.
func DecodeSource(t *testing.T, source *string, compression *string) []byte {
	t.Helper()
	if source == nil {
		return nil
	}
	u, err := url.Parse(*source)
	if err != nil || u.Scheme != "data" {
		t.Fatalf("file source %q is not inline", *source)
	}
	d, err := dataurl.DecodeString(*source)
	if err != nil {
		t.Fatal(err)
	}
	data := d.Data
	if compression != nil && *compression == "gzip" {
		r, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		data, _ = io.ReadAll(r)
	}
	return data
}

// TestCredentialTableIsThePKI checks the table against a render: every certificate and key in pki/
// (bootstrap tokens and the encryption key aside) is a credential of the table, and every file a
// machine gets from pki/ is placed by the table, so nothing is spelled out anywhere else.
func TestCredentialTableIsThePKI(t *testing.T) {
	res := render(t, loadSpec(t, "../examples/demo/cluster.hcl"), os.DirFS(filepath.Join("testdata", "golden", "demo")), renderTime)
	for _, a := range res.Assets.Files {
		if a.Kind != KindCertificate && a.Kind != KindPrivateKey && a.Kind != KindPublicKey || a.Path == EncryptionKeyPath {
			continue
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(a.Path, OutPKIDir+"/"), path.Ext(a.Path))
		found := false
		for _, c := range credentials {
			if _, ok := c.memberOf(rel); ok {
				found = true
			}
		}
		if !found {
			t.Errorf("%s is not in the credential table", a.Path)
		}
	}
	// Each machine's copies are the table's, byte for byte.
	var cfg struct {
		Storage struct {
			Files []struct {
				Path     string
				Contents struct{ Source string }
			}
		}
	}
	for _, a := range res.Assets.Files {
		if a.Kind != KindIgnition || a.Node != "node1" {
			continue
		}
		if err := json.Unmarshal(a.Data, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	var placed []string
	for _, f := range cfg.Storage.Files {
		if strings.HasPrefix(f.Path, HostPKIDir+"/") || strings.HasPrefix(f.Path, HostEtcdMemberPKIDir+"/") {
			placed = append(placed, f.Path)
		}
	}
	want := []string{}
	for _, c := range credentials {
		for _, h := range c.copies {
			if h.on != outputOnly {
				want = append(want, h.path)
			}
		}
	}
	sort.Strings(placed)
	sort.Strings(want)
	if !slices.Equal(placed, want) {
		t.Errorf("a controller's PKI files:\n%v\nthe table's:\n%v", placed, want)
	}
}
