package generator_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func targz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg})
		tw.Write([]byte(content))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// TestFetchScriptVerifiesBeforeInstalling runs the rendered liftoff-fetch script with bash and curl
// against a local HTTPS server: each kind of checksum installs the release, and a wrong digest
// installs nothing.
func TestFetchScriptVerifiesBeforeInstalling(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "sha512sum", "sha256sum", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run liftoff-fetch: %v", tool, err)
		}
	}
	kubelet := []byte("#!/bin/sh\necho kubelet\n")
	etcd := targz(t, map[string]string{"etcd-v9/etcd": "#!/bin/sh\n", "etcd-v9/etcdctl": "#!/bin/sh\n", "etcd-v9/README.md": "docs"})
	cni := targz(t, map[string]string{"bridge": "#!/bin/sh\n", "portmap": "#!/bin/sh\n", "LICENSE": "text"})
	sum512 := func(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
	sum256 := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	files := map[string][]byte{
		"/kubelet":        kubelet,
		"/kubelet.sha512": []byte(sum512(kubelet) + "\n"),
		"/etcd-v9.tar.gz": etcd,
		"/SHA256SUMS":     []byte(sum256([]byte("other")) + "  other.tar.gz\n" + sum256(etcd) + "  etcd-v9.tar.gz\n"),
		"/cni.tgz":        cni,
		"/cni.tgz.sha512": []byte(sum512(cni) + "  cni.tgz\n"),
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	script := filepath.Join("..", "templates", "butane", "liftoff-fetch.sh")
	run := func(root string, args ...string) (string, error) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "LIFTOFF_ROOT="+root, "CURL_CA_BUNDLE="+caFile)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	link := func(t *testing.T, root, p, want string) {
		t.Helper()
		got, err := os.Readlink(filepath.Join(root, p))
		if err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", p, got, err, want)
		}
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("%s: %v", want, err)
		}
	}

	t.Run("pinned sha512", func(t *testing.T) {
		root := t.TempDir()
		if out, err := run(root, "kubelet", "v9", srv.URL+"/kubelet", "sha512:"+sum512(kubelet)); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		link(t, root, "opt/bin/kubelet", "/opt/liftoff/kubelet-v9/kubelet")
	})
	t.Run("published sha512 file", func(t *testing.T) {
		root := t.TempDir()
		if out, err := run(root, "kubelet", "v9", srv.URL+"/kubelet", "sha512-url:"+srv.URL+"/kubelet.sha512"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		link(t, root, "opt/bin/kubelet", "/opt/liftoff/kubelet-v9/kubelet")
	})
	t.Run("release archive listed in SHA256SUMS", func(t *testing.T) {
		root := t.TempDir()
		if out, err := run(root, "etcd", "v9", srv.URL+"/etcd-v9.tar.gz", "sha256sums-url:"+srv.URL+"/SHA256SUMS"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		link(t, root, "opt/bin/etcd", "/opt/liftoff/etcd-v9/etcd")
		link(t, root, "opt/bin/etcdctl", "/opt/liftoff/etcd-v9/etcdctl")
		if _, err := os.Lstat(filepath.Join(root, "opt/bin/README.md")); err == nil {
			t.Error("a non-program was linked")
		}
	})
	t.Run("flat archive into another directory", func(t *testing.T) {
		root := t.TempDir()
		if out, err := run(root, "cni-plugins", "v9", srv.URL+"/cni.tgz", "sha512-url:"+srv.URL+"/cni.tgz.sha512", "/opt/cni/bin", "bridge"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		link(t, root, "opt/cni/bin/bridge", "/opt/liftoff/cni-plugins-v9/bridge")
		link(t, root, "opt/cni/bin/portmap", "/opt/liftoff/cni-plugins-v9/portmap")
	})
	t.Run("a wrong digest installs nothing", func(t *testing.T) {
		root := t.TempDir()
		out, err := run(root, "kubelet", "v9", srv.URL+"/kubelet", "sha512:"+sum512([]byte("tampered")))
		if err == nil || !strings.Contains(out, "does not match its sha512") {
			t.Fatalf("accepted a wrong digest: %v %s", err, out)
		}
		for _, p := range []string{"opt/bin/kubelet", "opt/liftoff/kubelet-v9"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("%s exists after a failed verification", p)
			}
		}
	})
	t.Run("a release missing from SHA256SUMS installs nothing", func(t *testing.T) {
		root := t.TempDir()
		files["/etcd-v8.tar.gz"] = etcd
		out, err := run(root, "etcd", "v8", srv.URL+"/etcd-v8.tar.gz", "sha256sums-url:"+srv.URL+"/SHA256SUMS")
		if err == nil || !strings.Contains(out, "not listed once") {
			t.Fatalf("%v %s", err, out)
		}
	})
}

// TestNodeIdentityScript runs a worker pool's identity script in a private mount namespace (with its
// own /run) and checks it names this host and one of its addresses.
func TestNodeIdentityScript(t *testing.T) {
	for _, tool := range []string{"unshare", "ip", "hostname"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v (Debian packages util-linux, iproute2, hostname)", tool, err)
		}
	}
	script, _ := filepath.Abs(filepath.Join("..", "templates", "butane", "liftoff-node-identity.sh"))
	out, err := exec.Command("unshare", "--mount", "sh", "-c",
		"mount -t tmpfs tmpfs /run && bash "+script+" && cat /run/liftoff/node.env").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	host, _ := os.Hostname()
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if env["NODE_NAME"] != strings.ToLower(host) {
		t.Errorf("NODE_NAME=%q, want %q", env["NODE_NAME"], strings.ToLower(host))
	}
	addrs, _ := net.InterfaceAddrs()
	found := false
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && ipnet.IP.String() == env["NODE_IP"] {
			found = true
		}
	}
	if !found {
		t.Errorf("NODE_IP=%q is not an address of this host (%v)", env["NODE_IP"], addrs)
	}
}
