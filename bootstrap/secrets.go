package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/generator/pki"
)

// StageSecrets names the events of serving machines their secrets, which goes on beside the stages
// while a run lasts.
const StageSecrets Stage = "secrets"

// SecretsServer serves each machine of a render that fetches its secrets (machine_secrets.server)
// its own pack, over HTTPS with a certificate the cluster CA signs for the server's address, and
// only to a client at that machine's address.
type SecretsServer struct {
	srv      *http.Server
	done     chan struct{}
	mu       sync.Mutex
	served   map[string]bool
	machines map[string]string
}

// ServeSecrets starts serving the machines of the render in dir their secrets on listen (the
// server's address from the render when empty). It returns nil when the render's machines carry
// their secrets in their configs. progress receives a StageSecrets event for every request.
func ServeSecrets(dir, listen string, progress func(Event)) (*SecretsServer, error) {
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(generator.MachineSecretsServerPath)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var desc generator.SecretsServer
	if err := json.Unmarshal(data, &desc); err != nil {
		return nil, fmt.Errorf("%s: %w", generator.MachineSecretsServerPath, err)
	}
	cert, err := secretsServerCert(dir, desc.Address)
	if err != nil {
		return nil, err
	}
	if listen == "" {
		listen = desc.Address
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("serving the machines' secrets: %w (liftoff listens on machine_secrets.server, %s, unless told another address to listen on)", err, desc.Address)
	}
	s := &SecretsServer{done: make(chan struct{}), served: map[string]bool{}, machines: desc.Machines}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+generator.SecretsPathPrefix+"{machine}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("machine")
		from, _, _ := net.SplitHostPort(r.RemoteAddr)
		want, ok := desc.Machines[name]
		e := Event{Stage: StageSecrets, Object: "machine " + name}
		switch {
		case !ok:
			http.Error(w, "no such machine", http.StatusNotFound)
			e.Result, e.Detail = ResultWarning, "refused a request from "+from+" for a machine the render does not have"
		case !sameIP(from, want):
			http.Error(w, "this machine's secrets are served only to its own address", http.StatusForbidden)
			e.Result, e.Detail = ResultWarning, fmt.Sprintf("refused its secrets to %s: it is at %s", from, want)
		default:
			pack, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(generator.MachineSecretsPath(name))))
			if err != nil {
				http.Error(w, "no secrets for this machine", http.StatusInternalServerError)
				e.Result, e.Detail = ResultFailed, err.Error()
				break
			}
			w.Header().Set("Content-Type", "application/x-tar")
			w.Write(pack)
			s.mu.Lock()
			s.served[name] = true
			s.mu.Unlock()
			e.Result, e.Detail = ResultDone, "served its secrets to "+from
		}
		e.Time = time.Now()
		progress(e)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: cipherSuites()}}
	go func() {
		defer close(s.done)
		s.srv.ServeTLS(l, "", "")
	}()
	progress(Event{Time: time.Now(), Stage: StageSecrets, Result: ResultStarted,
		Detail: fmt.Sprintf("serving %d machines their secrets on %s", len(desc.Machines), l.Addr())})
	return s, nil
}

// Waiting names the machines that have not fetched their secrets yet.
func (s *SecretsServer) Waiting() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name := range s.machines {
		if !s.served[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Close stops serving.
func (s *SecretsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// secretsServerCert is a certificate for the server's address, signed by the cluster CA, which the
// machines check the server against. It lives as long as the server: nothing is written.
func secretsServerCert(dir, address string) (tls.Certificate, error) {
	read := func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, filepath.FromSlash(p))) }
	caCert, err := read(path.Join(generator.OutPKIDir, generator.CACert))
	if err != nil {
		return tls.Certificate{}, err
	}
	caKey, err := read(path.Join(generator.OutPKIDir, generator.CAKey))
	if err != nil {
		return tls.Certificate{}, err
	}
	ca := &pki.KeyPair{}
	if ca.Cert, err = pki.ParseCert(caCert); err != nil {
		return tls.Certificate{}, err
	}
	if ca.Key, err = pki.ParseKey(caKey); err != nil {
		return tls.Certificate{}, err
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return tls.Certificate{}, err
	}
	t := pki.Template{CommonName: "liftoff-secrets-server", Usage: pki.UsageServer}
	if ip := net.ParseIP(host); ip != nil {
		t.IPs = []net.IP{ip}
	} else {
		t.DNSNames = []string{host}
	}
	key, err := pki.GenerateKey("ecdsa-p256", rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := pki.Sign(ca, t, key.Public(), time.Now().Add(-time.Minute), 7*24*time.Hour, rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}

// cipherSuites are the TLS 1.2 suites liftoff's other endpoints allow (generator.TLSCipherSuites).
func cipherSuites() []uint16 {
	var out []uint16
	for _, s := range tls.CipherSuites() {
		if slices.Contains(generator.TLSCipherSuites, s.Name) {
			out = append(out, s.ID)
		}
	}
	return out
}

// notJoined are those of names that have no Node: a machine whose kubelet has joined had its
// secrets, whether from this run or an earlier one.
func (r *run) notJoined(names []string) []string {
	if r.client == nil || len(names) == 0 {
		return names
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := r.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return names
	}
	var out []string
	for _, name := range names {
		if !slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool { return n.Name == name }) {
			out = append(out, name)
		}
	}
	return out
}
