// Package apiservertest runs a real etcd and kube-apiserver for tests, built by testbin at the
// pinned versions.
package apiservertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/liftoff-k8s/liftoff/internal/testbin"
)

// Start runs a real etcd and kube-apiserver for one test and returns a cluster-admin client
// configuration (a token in group system:masters). The apiserver authorizes as liftoff's does
// (Node,RBAC). Start does not wait for it to be ready: see WaitReady. Both processes are killed
// with their process groups when the test ends, and a failed test logs the end of their output.
func Start(t testing.TB) *rest.Config {
	t.Helper()
	apiAddress := FreeLoopback(t)
	etcd := testbin.MustPath(t, "etcd")
	apiserver := testbin.MustPath(t, "kube-apiserver")
	dir := t.TempDir()
	start := func(name string, args ...string) { StartProcess(t, name, filepath.Join(dir, name+".log"), args...) }
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalECPrivateKey(key)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	saKey := write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	saPub := write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	tokens := write("tokens.csv", []byte("liftoff-test-token,admin,admin,system:masters\n"))
	start("etcd", etcd, "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+apiAddress+":2379", "--advertise-client-urls", "http://"+apiAddress+":2379",
		"--listen-peer-urls", "http://"+apiAddress+":2380", "--initial-advertise-peer-urls", "http://"+apiAddress+":2380",
		"--initial-cluster", "default=http://"+apiAddress+":2380")
	start("kube-apiserver", apiserver, "--etcd-servers", "http://"+apiAddress+":2379",
		"--bind-address", apiAddress, "--advertise-address", apiAddress, "--secure-port", "6443",
		"--cert-dir", filepath.Join(dir, "certs"), "--token-auth-file", tokens, "--authorization-mode", "Node,RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", saPub,
		"--service-account-signing-key-file", saKey, "--service-cluster-ip-range", "10.0.0.0/24")
	return &rest.Config{Host: "https://" + apiAddress + ":6443", BearerToken: "liftoff-test-token",
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
}

// WaitReady waits until the apiserver at cfg answers /readyz, failing the test with its last
// answer after two minutes.
func WaitReady(t testing.TB, cfg *rest.Config) {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kube-apiserver at %s was not ready within 2m: %v %s", cfg.Host, err, body)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// FreeLoopback picks a loopback address whose etcd and apiserver ports are free, so that test runs
// on one host do not collide.
func FreeLoopback(t testing.TB) string {
	t.Helper()
	for range 20 {
		addr := fmt.Sprintf("127.%d.%d.1", 100+mrand.IntN(150), mrand.IntN(256))
		free := true
		for _, port := range []string{"2379", "2380", "6443"} {
			ln, err := net.Listen("tcp", net.JoinHostPort(addr, port))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return addr
		}
	}
	t.Fatal("found no free loopback address")
	return ""
}

// StartProcess starts args as a test's server process in a process group of its own, with its
// output in logPath. The group is killed when the test ends (or the test process dies), or
// earlier by kill, and a failed test logs the end of the output under name.
func StartProcess(t testing.TB, name, logPath string, args ...string) (kill func()) {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		kill()
		log.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			t.Logf("--- %s:\n%s", name, strings.Join(lines, "\n"))
		}
	})
	return kill
}
