package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// snapshot reads every file under dir with its mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = info.Mode().String() + " " + string(b)
		return nil
	})
	return out
}

func TestRenderWritesAtomicallyAndReusesKeys(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if _, stderr, code := runCLI(t, "render", "--spec", "../../examples/demo/cluster.hcl", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	first := snapshot(t, out)
	if len(first) < 50 {
		t.Fatalf("only %d files rendered", len(first))
	}
	if m := first["pki/ca.key"]; !strings.HasPrefix(m, "-rw------- ") {
		t.Errorf("ca.key mode: %s", m[:10])
	}

	// Same spec again: byte-identical files.
	if _, stderr, code := runCLI(t, "render", "--spec", "../../examples/demo/cluster.hcl", "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	if second := snapshot(t, out); len(second) != len(first) {
		t.Fatalf("%d files then %d", len(first), len(second))
	} else {
		for p, v := range first {
			if second[p] != v {
				t.Errorf("%s changed on re-render", p)
			}
		}
	}

	// A bad spec leaves the directory exactly as it was.
	bad := filepath.Join(dir, "bad.hcl")
	src, _ := os.ReadFile("../../examples/demo/cluster.hcl")
	os.WriteFile(bad, bytes.Replace(src, []byte(`"10.0.0.21"`), []byte(`"10.0.0.11"`), 1), 0o644)
	if _, _, code := runCLI(t, "render", "--spec", bad, "--out", out); code == 0 {
		t.Fatal("bad spec accepted")
	}
	for p, v := range snapshot(t, out) {
		if first[p] != v {
			t.Errorf("%s changed after a failed render", p)
		}
	}

	// A file liftoff did not write is never deleted.
	os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o644)
	_, stderr, code := runCLI(t, "render", "--spec", "../../examples/demo/cluster.hcl", "--out", out)
	if code == 0 || !strings.Contains(stderr, "notes.txt") {
		t.Fatalf("render over a stray file: code %d, %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "notes.txt")); string(b) != "mine" {
		t.Error("the stray file was touched")
	}
	os.Remove(filepath.Join(out, "notes.txt"))

	// A relative --out works from the directory it is relative to.
	wd, _ := os.Getwd()
	spec, _ := filepath.Abs("../../examples/demo/cluster.hcl")
	os.Chdir(dir)
	_, stderr, code = runCLI(t, "render", "--spec", spec, "--out", "relative")
	os.Chdir(wd)
	if code != 0 {
		t.Fatalf("relative --out: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "relative", "index.json")); err != nil {
		t.Fatal(err)
	}

	// A directory that is not liftoff's is refused.
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "x"), nil, 0o644)
	if _, stderr, code := runCLI(t, "render", "--spec", "../../examples/demo/cluster.hcl", "--out", other); code == 0 || !strings.Contains(stderr, "not a liftoff output directory") {
		t.Fatalf("rendered into a foreign directory: %s", stderr)
	}

	// certs lists every certificate with subject, SANs, expiry and the machines that have it, and
	// flags the renewal window.
	stdout, stderr, code := runCLI(t, "certs", "--dir", out)
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		for prefix, on := range map[string]string{
			"pki/ca.crt ":                "every machine",
			"pki/super-admin.crt ":       "output only, in auth/super-admin.conf",
			"pki/apiserver/node1.crt ":   "node1",
			"pki/etcd/node2/peer.crt ":   "node2",
			"pki/controller-manager.crt": "controllers, in /etc/kubernetes/controller-manager.conf",
		} {
			if strings.HasPrefix(line, prefix) && !strings.Contains(line, "  "+on+"  ") {
				t.Errorf("certs says of %s: %s; want it on %q", prefix, line, on)
			}
		}
	}
	for _, want := range []string{"pki/apiserver/node1.crt", "CN=kube-apiserver", "api.demo.example.com", "10.3.0.1", "pki/etcd/node2/peer.crt", "CN=liftoff demo cluster CA", "CA"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("certs output lacks %q", want)
		}
	}
	if strings.Contains(stdout, "RENEW") {
		t.Error("fresh certificates flagged for renewal")
	}
	stdout, _, _ = runCLI(t, "certs", "--dir", out, "--renew-before", "400d")
	if !strings.Contains(stdout, "RENEW") {
		t.Error("certificates inside a 400-day window not flagged")
	}
	if strings.Contains(stdout, "PRIVATE KEY") {
		t.Error("certs printed key material")
	}
	if _, _, code := runCLI(t, "certs", "--dir", out, "--check"); code != 0 {
		t.Error("--check failed on fresh certificates")
	}
	if _, stderr, code := runCLI(t, "certs", "--dir", out, "--check", "--renew-before", "400d"); code == 0 || !strings.Contains(stderr, "pki/apiserver/node2.crt") {
		t.Errorf("--check passed with certificates inside the window: %s", stderr)
	}
}
