package matchbox_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/platforms/internal/matchboxtest"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/matchbox"
)

var (
	privateKeyPEM = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	clientKeyData = regexp.MustCompile(`client-key-data: \S+`)
)

// findings adds the secrets of the render in out that text reveals to found, by kind, each one once.
func findings(t *testing.T, out, text string, found map[string]map[string]bool) {
	t.Helper()
	add := func(kind, secret string) {
		if found[kind] == nil {
			found[kind] = map[string]bool{}
		}
		found[kind][secret] = true
	}
	for _, k := range privateKeyPEM.FindAllString(text, -1) {
		add("private keys", k)
	}
	for _, k := range clientKeyData.FindAllString(text, -1) {
		add("kubeconfigs with a client key", k)
	}
	key, err := os.ReadFile(filepath.Join(out, generator.EncryptionKeyPath))
	if err != nil {
		t.Fatal(err)
	}
	if k := strings.TrimSpace(string(key)); strings.Contains(text, k) {
		add("Secrets encryption key", k)
	}
	tokens, err := generator.ReadBootstrapTokens(os.DirFS(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if strings.Contains(text, tok.Secret) {
			add("bootstrap tokens", tok.Secret)
		}
	}
}

// served is what an answer from matchbox says, with every file of an Ignition config decoded.
func served(t *testing.T, body []byte) string {
	t.Helper()
	cfg, _, err := ign.Parse(body)
	if err != nil {
		return string(body) // an iPXE script, metadata, or an error
	}
	text := []string{string(body)}
	for _, f := range cfg.Storage.Files {
		if f.Contents.Source != nil && strings.HasPrefix(*f.Contents.Source, "data:") {
			text = append(text, testcluster.FileText(t, cfg, f.Path))
		}
	}
	return strings.Join(text, "\n")
}

// merged lists the configs an Ignition config merges, by their path and query on matchbox.
func merged(t *testing.T, body []byte) []string {
	t.Helper()
	cfg, _, err := ign.Parse(body)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range cfg.Ignition.Config.Merge {
		u, err := url.Parse(*r.Source)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u.RequestURI())
	}
	return out
}

// attack asks a real matchbox serving the render in out for everything it holds for each machine,
// as anyone on the provisioning network can: every endpoint, by each MAC in both spellings, for
// the install and the installed stage, and the configs those configs merge. It returns the
// distinct secrets it found for each MAC, by kind, and how many merged configs it fetched.
func attack(t *testing.T, out string, macs []string) (byMAC map[string]map[string]map[string]bool, mergedFetched int) {
	t.Helper()
	port := matchboxtest.FreePort(t)
	m := matchboxtest.Start(t, port, filepath.Join(out, matchbox.DataDir))
	byMAC = map[string]map[string]map[string]bool{}
	for _, mac := range macs {
		found := map[string]map[string]bool{}
		for _, spelled := range []string{hexhyp(mac), mac} {
			for _, stage := range []url.Values{{"mac": {spelled}}, {"mac": {spelled}, "os": {"installed"}}} {
				for _, endpoint := range []string{"/ipxe", "/grub", "/ignition", "/generic", "/metadata"} {
					body, status, err := m.Fetch(m.URL + endpoint + "?" + stage.Encode())
					if err != nil {
						t.Fatal(err)
					}
					if status == 200 {
						findings(t, out, served(t, body), found)
						// and the configs it merges, such as its role's
						for _, ref := range merged(t, body) {
							body := m.Get(t, ref)
							findings(t, out, served(t, body), found)
							mergedFetched++
						}
					}
				}
			}
		}
		byMAC[mac] = found
	}
	return byMAC, mergedFetched
}

func describeFindings(f map[string]map[string]bool) string {
	var parts []string
	for _, kind := range []string{"private keys", "kubeconfigs with a client key", "Secrets encryption key", "bootstrap tokens"} {
		if n := len(f[kind]); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, kind))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// TestMatchboxServesNoSecret plays an attacker on the provisioning network against the bare-metal
// example: with machine_secrets.server (the example's, and what liftoff requires with matchbox), a
// real matchbox serves no private key, client kubeconfig, encryption key or bootstrap token to
// anyone who knows the machines' MACs. With the secrets kept in the configs, it serves all of them.
func TestMatchboxServesNoSecret(t *testing.T) {
	src, err := os.ReadFile("../../examples/bare-metal/cluster.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, src string
		secure    bool
	}{
		{"fetched from liftoff", string(src), true},
		{"in the configs", strings.Replace(string(src), `server = "10.0.0.2:9443"`, "in_ignition = true", 1), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := testcluster.Render(t, tt.src)
			out := filepath.Join(t.TempDir(), "out")
			if err := outdir.Write(out, r.Assets); err != nil {
				t.Fatal(err)
			}
			var macs []string
			names := map[string]string{}
			for _, n := range machines(r.Cluster) {
				macs = append(macs, n.mac)
				names[n.mac] = n.name
			}
			leaked := 0
			byMAC, mergedFetched := attack(t, out, macs)
			for mac, found := range byMAC {
				t.Logf("%s (%s): matchbox serves %s", names[mac], mac, describeFindings(found))
				leaked += len(found)
			}
			if tt.secure && leaked > 0 {
				t.Error("matchbox serves secrets to whoever knows a MAC")
			}
			// The machines' configs merge their roles' shared configs, which the attack reads too.
			if tt.secure && mergedFetched == 0 {
				t.Error("no served config merges a role config: the attack did not reach the role configs")
			}
			if !tt.secure && leaked == 0 {
				t.Error("with the secrets in the configs the attacker found none: the attack does not reach them")
			}
		})
	}
}
