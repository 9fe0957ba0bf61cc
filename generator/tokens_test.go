package generator

import (
	"os"
	"strings"
	"testing"
	"time"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	"k8s.io/client-go/tools/clientcmd"
)

// tokenClusterSpec is the example cluster with a worker pool.
func tokenClusterSpec(t *testing.T) string {
	t.Helper()
	src := mustRead(t, "../examples/demo/cluster.hcl")
	return strings.Replace(src, `  worker "node4" {`, "  worker_pool \"general\" {\n    size = 2\n  }\n  worker \"node4\" {", 1)
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// joinToken is the token of the bootstrap kubeconfig an Ignition config places.
func joinToken(t *testing.T, config []byte) string {
	t.Helper()
	cfg, _, err := ign.Parse(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range cfg.Storage.Files {
		if f.Path != HostBootstrapKubeletConf {
			continue
		}
		kc, err := clientcmd.Load(DecodeSource(t, f.Contents.Source, f.Contents.Compression))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range kc.AuthInfos {
			return u.Token
		}
	}
	t.Fatalf("no %s in the config", HostBootstrapKubeletConf)
	return ""
}

// TestBootstrapTokens checks that every machine and worker pool joins with a token of its own, that
// a machine's expires after the TTL and a pool's does not, that the manifests carry exactly the
// tokens the cluster should accept, and that replacing one token changes only its owner's config.
func TestBootstrapTokens(t *testing.T) {
	c := parseSpec(t, tokenClusterSpec(t))
	first := render(t, c, nil, renderTime)

	owners := map[string]string{ // Ignition config -> token owner
		"ignition/node1.ign": MachineTokenOwner("node1"), "ignition/node4.ign": MachineTokenOwner("node4"),
		OutPoolIgnitionDir + "/general.ign": PoolTokenOwner("general"),
	}
	seen := map[string]string{}
	for cfg, owner := range owners {
		a := first.Assets.Get(cfg)
		if a == nil {
			t.Fatalf("%s not rendered", cfg)
		}
		got := joinToken(t, a.Data)
		tok := first.Assets.Get(BootstrapTokensDir + "/" + owner)
		if tok == nil || tok.Mode != 0o600 {
			t.Fatalf("%s: token file %v", owner, tok)
		}
		want, err := ParseBootstrapToken(owner, tok.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got != want.String() {
			t.Errorf("%s joins with %q, not its own token %q", cfg, got, want)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s and %s share a token", cfg, other)
		}
		seen[got] = cfg
		if strings.HasPrefix(owner, "pools/") {
			if !want.Expires.IsZero() {
				t.Errorf("%s's token expires %s; a pool joins machines at any time", owner, want.Expires)
			}
		} else if ttl := want.Expires.Sub(renderTime); ttl != 24*time.Hour {
			t.Errorf("%s's token expires %s after the render, want the default 24h", owner, ttl)
		}
	}
	if a := first.Assets.Get(LegacyBootstrapTokenPath); a != nil {
		t.Errorf("%s is still rendered", LegacyBootstrapTokenPath)
	}

	manifest := func(r *Result) string { return string(r.Assets.Get("manifests/00-bootstrap-token.yaml").Data) }
	for tok, cfg := range seen {
		if id, _, _ := strings.Cut(tok, "."); !strings.Contains(manifest(first), "name: bootstrap-token-"+id+"\n") {
			t.Errorf("the manifests lack the token of %s", cfg)
		}
	}

	// A day later the machines' tokens have expired: the cluster no longer gets them, the pool's
	// stays, and the machines' configs do not change.
	later := render(t, c, toFS(first.Assets), renderTime.Add(24*time.Hour))
	for tok, cfg := range seen {
		id, _, _ := strings.Cut(tok, ".")
		rendered := strings.Contains(manifest(later), "bootstrap-token-"+id)
		if pool := strings.HasPrefix(cfg, OutPoolIgnitionDir); rendered != pool {
			t.Errorf("a day later, the token of %s is rendered: %v", cfg, rendered)
		}
	}
	if string(later.Assets.Get("ignition/node4.ign").Data) != string(first.Assets.Get("ignition/node4.ign").Data) {
		t.Error("node4's config changed when its token expired")
	}

	// Removing one token file (as `liftoff token rotate` does) replaces that token alone.
	existing := toFS(first.Assets)
	delete(existing, BootstrapTokensDir+"/"+PoolTokenOwner("general"))
	rotated := render(t, c, existing, renderTime.Add(time.Hour))
	if len(rotated.Changes) != 1 || rotated.Changes[0].Path != BootstrapTokensDir+"/pools/general" {
		t.Errorf("rotating the pool's token changed %+v", rotated.Changes)
	}
	for _, a := range first.Assets.Files {
		if a.Kind != KindIgnition {
			continue
		}
		changed := string(rotated.Assets.Get(a.Path).Data) != string(a.Data)
		if want := a.Path == OutPoolIgnitionDir+"/general.ign"; changed != want {
			t.Errorf("rotating the pool's token: %s changed: %v", a.Path, changed)
		}
	}
}

// TestLegacyBootstrapTokenDropped checks the upgrade from one shared token: a re-render drops it
// and says so.
func TestLegacyBootstrapTokenDropped(t *testing.T) {
	c := parseSpec(t, tokenClusterSpec(t))
	first := render(t, c, nil, renderTime)
	existing := toFS(first.Assets)
	existing[LegacyBootstrapTokenPath] = existing[BootstrapTokensDir+"/"+MachineTokenOwner("node1")]
	again := render(t, c, existing, renderTime)
	if len(again.Changes) != 1 || again.Changes[0].Path != LegacyBootstrapTokenPath || !strings.Contains(again.Changes[0].Reason, "removed") {
		t.Errorf("changes %+v, want the shared token reported removed", again.Changes)
	}
	if again.Assets.Get(LegacyBootstrapTokenPath) != nil {
		t.Errorf("%s is still rendered", LegacyBootstrapTokenPath)
	}
}

func TestParseBootstrapToken(t *testing.T) {
	for _, tc := range []struct {
		data, err string
	}{
		{"abcdef.0123456789abcdef\n", ""},
		{"abcdef.0123456789abcdef\nexpires: 2030-01-02T03:04:05Z\n", ""},
		{"abcdef.0123456789abcde\n", "not a bootstrap token"},
		{"ABCDEF.0123456789abcdef\n", "not a bootstrap token"},
		{"abcdef.0123456789abcdef\nexpires: tomorrow\n", "cannot parse"},
		{"abcdef.0123456789abcdef\nowner: me\n", "unexpected line"},
	} {
		tok, err := ParseBootstrapToken("machines/n1", []byte(tc.data))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.data, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %v, want an error with %q", tc.data, err, tc.err)
		case tc.err == "" && string(tok.File()) != tc.data:
			t.Errorf("%q written back as %q", tc.data, tok.File())
		}
	}
}
