package generator

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	ign "github.com/coreos/ignition/v2/config/v3_4"
	igntypes "github.com/coreos/ignition/v2/config/v3_4/types"
)

// placed is every file an Ignition config places, by path, with its content and mode.
func placed(t *testing.T, config []byte) map[string]string {
	t.Helper()
	cfg, _, err := ign.Parse(config)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range cfg.Storage.Files {
		out[f.Path] = string(DecodeSource(t, f.Contents.Source, f.Contents.Compression)) + modeOf(f)
	}
	return out
}

func modeOf(f igntypes.File) string {
	if f.Mode == nil {
		return ""
	}
	return fmt.Sprintf(" mode %o", *f.Mode)
}

// unpacked is every file of a machine's secrets pack, as placed by tar.
func unpacked(t *testing.T, pack []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	r := tar.NewReader(bytes.NewReader(pack))
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		out["/"+h.Name] = string(data) + fmt.Sprintf(" mode %o", h.Mode)
	}
}

// TestMachineSecretsFetched renders the example cluster with machine_secrets.server: no machine's
// Ignition config holds a private key or credential, and each machine's pack plus its config place
// exactly the files a render with the secrets in the configs places.
func TestMachineSecretsFetched(t *testing.T) {
	src := tokenClusterSpec(t)
	inline := render(t, parseSpec(t, src), nil, renderTime)
	fetching := parseSpec(t, strings.Replace(src, `  controller "node1" {`, "  machine_secrets {\n    server = \"10.0.0.2:9443\"\n  }\n  controller \"node1\" {", 1))
	fetched := render(t, fetching, toFS(inline.Assets), renderTime)

	secretMarks := []string{"PRIVATE KEY", "client-key-data", strings.TrimSpace(string(inline.Assets.Get(EncryptionKeyPath).Data))}
	tokens, err := ReadBootstrapTokens(toFS(inline.Assets))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if !strings.HasPrefix(tok.Owner, "pools/") {
			secretMarks = append(secretMarks, tok.Secret)
		}
	}
	for _, a := range fetched.Assets.Files {
		if a.Kind != KindIgnition || a.Node == "" {
			continue
		}
		config := placed(t, a.Data)
		for p, content := range config {
			for _, mark := range secretMarks {
				if strings.Contains(content, mark) {
					t.Errorf("%s places %s, which holds %q", a.Path, p, mark)
				}
			}
		}
		pack := fetched.Assets.Get(MachineSecretsPath(a.Node))
		if pack == nil || pack.Mode != 0o600 {
			t.Fatalf("%s: no pack of secrets (%v)", a.Node, pack)
		}
		both := unpacked(t, pack.Data)
		for p, content := range config {
			if _, dup := both[p]; dup {
				t.Errorf("%s: %s is both in the config and in the pack", a.Node, p)
			}
			both[p] = content
		}
		want := placed(t, inline.Assets.Get(a.Path).Data)
		for p, content := range want {
			// The kubelet's unit waits for the secrets; nothing else differs.
			if p == "/etc/systemd/system/kubelet.service" {
				continue
			}
			if both[p] != content {
				t.Errorf("%s: %s differs from the render with the secrets in the config", a.Node, p)
			}
		}
		if len(both) != len(want)+1 { // the fetch script
			t.Errorf("%s: config and pack place %d files, the config with secrets %d", a.Node, len(both), len(want))
		}
		if !strings.Contains(config["/etc/systemd/system/kubelet.service"], "Requires="+SecretsFetchUnit) {
			t.Errorf("%s: the kubelet does not wait for the secrets", a.Path)
		}
		if _, ok := config[HostSecretsFetchScript]; !ok {
			t.Errorf("%s: no %s", a.Path, HostSecretsFetchScript)
		}
	}

	var server SecretsServer
	if err := json.Unmarshal(fetched.Assets.Get(MachineSecretsServerPath).Data, &server); err != nil {
		t.Fatal(err)
	}
	if server.Address != "10.0.0.2:9443" || server.Machines["node1"] != "10.0.0.11" || len(server.Machines) != 4 {
		t.Errorf("server.json: %+v", server)
	}
	// A worker pool has no address to be served to: its config keeps its token.
	pool := placed(t, fetched.Assets.Get(OutPoolIgnitionDir+"/general.ign").Data)
	if !strings.Contains(pool[HostBootstrapKubeletConf], "token: ") {
		t.Error("the pool's config lacks its bootstrap token")
	}
}
