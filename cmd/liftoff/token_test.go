package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenListAndRotate lists a render's bootstrap tokens and rotates one machine's: only that
// machine's token and config change, and the listing never shows a secret.
func TestTokenListAndRotate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	const spec = "../../examples/demo/cluster.hcl"
	if _, stderr, code := runCLI(t, "render", "--spec", spec, "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	before := snapshot(t, out)

	list, stderr, code := runCLI(t, "token", "list", "--dir", out)
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, want := range []string{"OWNER", "machines/node1", "machines/node4", "h0m0s left"} {
		if !strings.Contains(list, want) {
			t.Errorf("token list lacks %q:\n%s", want, list)
		}
	}
	for p, v := range before {
		if strings.HasPrefix(p, "pki/bootstrap-tokens/") {
			secret := strings.SplitN(strings.SplitN(v, " ", 2)[1], ".", 2)[1][:16]
			if strings.Contains(list, secret) {
				t.Errorf("token list shows the secret of %s", p)
			}
		}
	}

	stdout, stderr, code := runCLI(t, "token", "rotate", "--spec", spec, "--out", out, "node4")
	if code != 0 {
		t.Fatal(stderr)
	}
	if !strings.Contains(stdout, "rotated machines/node4") || !strings.Contains(stdout, "liftoff bootstrap") {
		t.Errorf("rotate said:\n%s", stdout)
	}
	after := snapshot(t, out)
	for p, v := range before {
		changed := after[p] != v
		want := p == "pki/bootstrap-tokens/machines/node4" || p == "ignition/node4.ign" ||
			p == "manifests/00-bootstrap-token.yaml" || p == "index.json"
		if changed != want {
			t.Errorf("rotating node4's token: %s changed: %v", p, changed)
		}
	}

	if _, stderr, code := runCLI(t, "token", "rotate", "--spec", spec, "--out", out, "node9"); code == 0 || !strings.Contains(stderr, "no worker pool or machine named node9") {
		t.Errorf("rotating an unknown name: exit %d, %s", code, stderr)
	}
	if again := snapshot(t, out); len(again) != len(after) {
		t.Error("a refused rotation changed the output directory")
	}
	if _, err := os.Stat(filepath.Join(out, "pki/bootstrap-token")); !os.IsNotExist(err) {
		t.Errorf("the shared token of older renders exists: %v", err)
	}
}
