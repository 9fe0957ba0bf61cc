package kubelet

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/client-go/util/keyutil"
)

// Names of the kubelet's client certificate files in --cert-dir, as the real kubelet names them.
const (
	clientCertPrefix  = "kubelet-client"
	clientCertCurrent = "kubelet-client-current.pem"
)

// credentials returns a client that authenticates as the node. A kubeconfig with a valid client
// certificate from an earlier boot is reused; otherwise the kubelet goes through TLS bootstrap: it
// authenticates with the bootstrap token, asks for a client certificate for system:node:NAME in
// system:nodes with a CertificateSigningRequest for the kube-apiserver-client-kubelet signer, and
// waits until the controller-manager approves and signs it.
func (k *Kubelet) credentials(ctx context.Context) (kubernetes.Interface, error) {
	cfg, err := k.loadKubeconfig()
	switch {
	case err == nil:
		k.logf("using the client certificate in %s", k.flags.Kubeconfig)
		return kubernetes.NewForConfig(cfg)
	case !errors.Is(err, fs.ErrNotExist):
		k.logf("not using %s: %v; bootstrapping again", k.flags.Kubeconfig, err)
	}
	if k.flags.BootstrapKubeconfig == "" {
		return nil, fmt.Errorf("kubelet %s: %s is unusable and there is no --bootstrap-kubeconfig", k.name, k.flags.Kubeconfig)
	}
	boot, err := clientcmd.LoadFromFile(k.host(k.flags.BootstrapKubeconfig))
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: reading --bootstrap-kubeconfig: %w", k.name, err)
	}
	bootCfg, err := clientcmd.NewDefaultClientConfig(*boot, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: %s: %w", k.name, k.flags.BootstrapKubeconfig, err)
	}
	k.tune(bootCfg)
	bootClient, err := kubernetes.NewForConfig(bootCfg)
	if err != nil {
		return nil, err
	}
	var certPEM, keyPEM []byte
	err = k.retry(ctx, "TLS bootstrap", func() error {
		certPEM, keyPEM, err = k.requestClientCertificate(ctx, bootClient)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := k.writeCredentials(bootCfg, certPEM, keyPEM); err != nil {
		return nil, err
	}
	if cfg, err = k.loadKubeconfig(); err != nil {
		return nil, fmt.Errorf("kubelet %s: the kubeconfig just written does not load: %w", k.name, err)
	}
	return kubernetes.NewForConfig(cfg)
}

func (k *Kubelet) requestClientCertificate(ctx context.Context, client kubernetes.Interface) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csrPEM, err := cert.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + k.name, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, csrPEM, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the CertificateSigningRequest: %w", err)
	}
	k.logf("CertificateSigningRequest %s created; waiting for approval and signing", name)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	certPEM, err = csr.WaitForCertificate(wctx, client, name, uid)
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for CertificateSigningRequest %s to be approved and signed: %w", name, err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	k.logf("CertificateSigningRequest %s signed", name)
	return certPEM, keyPEM, nil
}

// writeCredentials stores the certificate and key the way the real kubelet does (a dated PEM file
// with a kubelet-client-current.pem link to it) and writes --kubeconfig pointing at it.
func (k *Kubelet) writeCredentials(boot *rest.Config, certPEM, keyPEM []byte) error {
	dir := k.host(k.flags.CertDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dated := fmt.Sprintf("%s-%s.pem", clientCertPrefix, time.Now().UTC().Format("2006-01-02-15-04-05"))
	if err := os.WriteFile(filepath.Join(dir, dated), append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		return err
	}
	link := filepath.Join(dir, clientCertCurrent)
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(dated, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		return err
	}
	current := path.Join(k.flags.CertDir, clientCertCurrent)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default-cluster"] = &clientcmdapi.Cluster{Server: boot.Host, CertificateAuthorityData: boot.CAData}
	cfg.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: current, ClientKey: current}
	cfg.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth"}
	cfg.CurrentContext = "default-context"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	kc := k.host(k.flags.Kubeconfig)
	if err := os.MkdirAll(filepath.Dir(kc), 0o700); err != nil {
		return err
	}
	return os.WriteFile(kc, data, 0o600)
}

// loadKubeconfig loads --kubeconfig, with the file paths in it mapped into the machine's root, and
// checks that its client certificate is valid now.
func (k *Kubelet) loadKubeconfig() (*rest.Config, error) {
	raw, err := clientcmd.LoadFromFile(k.host(k.flags.Kubeconfig))
	if err != nil {
		return nil, err
	}
	for _, a := range raw.AuthInfos {
		if a.ClientCertificate != "" {
			a.ClientCertificate = k.host(a.ClientCertificate)
		}
		if a.ClientKey != "" {
			a.ClientKey = k.host(a.ClientKey)
		}
	}
	for _, c := range raw.Clusters {
		if c.CertificateAuthority != "" {
			c.CertificateAuthority = k.host(c.CertificateAuthority)
		}
	}
	cfg, err := clientcmd.NewDefaultClientConfig(*raw, nil).ClientConfig()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no certificate", cfg.CertFile)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	if now := time.Now(); now.After(c.NotAfter) || now.Before(c.NotBefore) {
		return nil, fmt.Errorf("its client certificate is valid from %s to %s only", c.NotBefore, c.NotAfter)
	}
	if c.Subject.CommonName != "system:node:"+k.name {
		return nil, fmt.Errorf("its client certificate is for %q, not system:node:%s", c.Subject.CommonName, k.name)
	}
	k.tune(cfg)
	return cfg, nil
}

// tune sets what every client of the kubelet shares: the machine's network and the kubelet's
// user agent and rates.
func (k *Kubelet) tune(cfg *rest.Config) {
	cfg.Dial = k.m.Dial
	cfg.UserAgent = "kubelet/" + Version + " (linux/liftoff-harness) " + strings.ReplaceAll(k.name, " ", "-")
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = 30 * time.Second
}
