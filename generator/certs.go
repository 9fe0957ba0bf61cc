package generator

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path"
	"strings"
	"time"

	"github.com/liftoff-k8s/liftoff/generator/pki"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Change records why a file's content was created or replaced, so a render can say what it did.
type Change struct {
	Path   string
	Reason string
}

// keyring issues the cluster's key material, reusing what an earlier render left in the output
// directory: a CA is never replaced, a leaf key is kept, and a leaf certificate is re-issued only when
// it no longer matches what the spec asks for or enters the renewal window.
type keyring struct {
	existing     fs.FS
	now          time.Time
	rand         io.Reader
	algorithm    string
	caValidity   time.Duration
	certValidity time.Duration
	renewBefore  time.Duration

	assets  []Asset
	changes []Change
}

func newKeyring(c *spec.Cluster, existing fs.FS, now time.Time, rand io.Reader) (*keyring, error) {
	caV, err := spec.ParseDuration(c.PKI.CAValidity)
	if err != nil {
		return nil, err
	}
	certV, err := spec.ParseDuration(c.PKI.CertValidity)
	if err != nil {
		return nil, err
	}
	renew, err := spec.ParseDuration(c.PKI.RenewBefore)
	if err != nil {
		return nil, err
	}
	return &keyring{existing: existing, now: now, rand: rand, algorithm: c.PKI.KeyAlgorithm,
		caValidity: caV, certValidity: certV, renewBefore: renew}, nil
}

func (k *keyring) read(p string) ([]byte, bool, error) {
	if k.existing == nil {
		return nil, false, nil
	}
	b, err := fs.ReadFile(k.existing, p)
	switch {
	case err == nil:
		return b, true, nil
	case isNotExist(err):
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("reading existing %s: %w", p, err)
}

func (k *keyring) emit(p string, kind Kind, mode fs.FileMode, data []byte) {
	k.assets = append(k.assets, Asset{Path: p, Kind: kind, Mode: mode, Data: data})
}

// key returns the private key at p (PEM), reusing an existing one of the spec's algorithm.
func (k *keyring) key(p string, isCA bool) (crypto.Signer, []byte, error) {
	data, ok, err := k.read(p)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		key, err := pki.ParseKey(data)
		if err != nil {
			return nil, nil, fmt.Errorf("existing %s is not a private key (%v); liftoff will not replace key material silently: restore it or remove the output directory", p, err)
		}
		if got := pki.Algorithm(key.Public()); got == k.algorithm {
			return key, data, nil
		} else if isCA {
			return nil, nil, fmt.Errorf("existing CA key %s is %s but the spec asks for %s: liftoff never replaces a CA during render; keep key_algorithm = %q or rotate the CA as docs/ca-rotation.md describes", p, got, k.algorithm, got)
		} else {
			k.changes = append(k.changes, Change{p, fmt.Sprintf("key algorithm changed from %s to %s", got, k.algorithm)})
		}
	} else {
		k.changes = append(k.changes, Change{p, "created"})
	}
	key, err := pki.GenerateKey(k.algorithm, k.rand)
	if err != nil {
		return nil, nil, err
	}
	data, err = pki.EncodeKey(key)
	return key, data, err
}

// ca returns the certificate authority stored as base.crt/base.key under pki/.
func (k *keyring) ca(base, commonName string) (*pki.KeyPair, error) {
	certPath, keyPath := path.Join(OutPKIDir, base+".crt"), path.Join(OutPKIDir, base+".key")
	certPEM, haveCert, err := k.read(certPath)
	if err != nil {
		return nil, err
	}
	_, haveKey, err := k.read(keyPath)
	if err != nil {
		return nil, err
	}
	if haveCert != haveKey {
		missing := keyPath
		if !haveCert {
			missing = certPath
		}
		return nil, fmt.Errorf("%s is missing but its pair exists: liftoff will not regenerate a CA silently; restore %s or remove both files to create a new CA (every machine must then be re-provisioned)", missing, missing)
	}
	key, keyPEM, err := k.key(keyPath, true)
	if err != nil {
		return nil, err
	}
	var kp *pki.KeyPair
	if haveCert {
		cert, err := pki.ParseCert(certPEM)
		if err != nil {
			return nil, fmt.Errorf("existing %s: %w", certPath, err)
		}
		if !pki.Matches(cert, key) {
			return nil, fmt.Errorf("existing %s does not belong to %s: liftoff will not replace a CA; restore the matching pair", certPath, keyPath)
		}
		kp = &pki.KeyPair{Cert: cert, Key: key}
	} else {
		kp, err = pki.NewCA(pki.Template{CommonName: commonName, Organization: []string{"liftoff"}}, key, k.now, k.caValidity, k.rand)
		if err != nil {
			return nil, err
		}
		certPEM = pki.EncodeCert(kp.Cert)
	}
	k.emit(certPath, KindCertificate, 0o644, certPEM)
	k.emit(keyPath, KindPrivateKey, 0o600, keyPEM)
	return kp, nil
}

// leaf returns the certificate and key stored as base.crt/base.key under pki/, signed by ca.
func (k *keyring) leaf(base string, ca *pki.KeyPair, t pki.Template) (*pki.KeyPair, error) {
	certPath, keyPath := path.Join(OutPKIDir, base+".crt"), path.Join(OutPKIDir, base+".key")
	key, keyPEM, err := k.key(keyPath, false)
	if err != nil {
		return nil, err
	}
	certPEM, haveCert, err := k.read(certPath)
	if err != nil {
		return nil, err
	}
	var cert *x509.Certificate
	if haveCert {
		if cert, err = pki.ParseCert(certPEM); err != nil {
			return nil, fmt.Errorf("existing %s: %w", certPath, err)
		}
		if why := pki.Mismatch(cert, ca.Cert, t, key.Public(), k.now, k.renewBefore); why != "" {
			k.changes = append(k.changes, Change{certPath, "re-issued: " + why})
			cert = nil
		}
	}
	if cert == nil {
		if cert, err = pki.Sign(ca, t, key.Public(), k.now, k.certValidity, k.rand); err != nil {
			return nil, err
		}
		certPEM = pki.EncodeCert(cert)
		if !haveCert {
			k.changes = append(k.changes, Change{certPath, "created"})
		}
	}
	k.emit(certPath, KindCertificate, 0o644, certPEM)
	k.emit(keyPath, KindPrivateKey, 0o600, keyPEM)
	return &pki.KeyPair{Cert: cert, Key: key}, nil
}

// issued is the cluster's key pairs by path base under pki/ (a member's with its name filled in).
type issued map[string]*pki.KeyPair

// issue issues every credential of the table for d: the CAs first, then what they sign.
func (k *keyring) issue(d *Cluster) (issued, error) {
	p := issued{}
	for _, cas := range []bool{true, false} {
		for _, c := range credentials {
			if c.isCA() != cas {
				continue
			}
			machines := []Machine{{}}
			if c.member {
				machines = d.EtcdMembers()
			}
			for _, m := range machines {
				base := c.base(m.Name)
				var kp *pki.KeyPair
				var err error
				switch {
				case c.keyOnly:
					kp, err = k.keyPair(base)
				case cas:
					kp, err = k.ca(base, c.template(d, m).CommonName)
				default:
					kp, err = k.leaf(base, p[c.ca], c.template(d, m))
				}
				if err != nil {
					return nil, err
				}
				p[base] = kp
			}
		}
	}
	return p, nil
}

// keyPair returns the private key stored as base.key under pki/ and writes its public key beside
// it as base.pub.
func (k *keyring) keyPair(base string) (*pki.KeyPair, error) {
	keyPath := path.Join(OutPKIDir, base+".key")
	key, keyPEM, err := k.key(keyPath, false)
	if err != nil {
		return nil, err
	}
	pub, err := pki.EncodePublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	k.emit(keyPath, KindPrivateKey, 0o600, keyPEM)
	k.emit(path.Join(OutPKIDir, base+".pub"), KindPublicKey, 0o644, pub)
	return &pki.KeyPair{Key: key}, nil
}

// apiServerTemplate is the serving certificate of machine m's apiserver: the API's address, m's
// own address and name, the API's Service and loopback, and the spec's extra SANs. It does not
// name the other controllers: a controller's key cannot impersonate another.
func apiServerTemplate(d *Cluster, m Machine) pki.Template {
	t := pki.Template{CommonName: "kube-apiserver", Usage: pki.UsageServer}
	addName := func(s string) {
		if s == "" {
			return
		}
		if ip := net.ParseIP(s); ip != nil {
			for _, have := range t.IPs {
				if have.Equal(ip) {
					return
				}
			}
			t.IPs = append(t.IPs, ip)
			return
		}
		for _, have := range t.DNSNames {
			if have == s {
				return
			}
		}
		t.DNSNames = append(t.DNSNames, s)
	}
	addName(d.APIServerHost)
	addName(m.IP)
	addName(m.Domain)
	addName(d.APIServiceIP)
	for _, n := range []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + d.ClusterDomain, "localhost", "127.0.0.1"} {
		addName(n)
	}
	for _, s := range d.Spec.PKI.ExtraSANs {
		addName(s)
	}
	return t
}

// encryptionKey returns the key kube-apiserver seals Secrets with (32 random bytes, base64), reusing
// an earlier render's. Secrets sealed with a lost key cannot be read again, so an unreadable one is
// an error, never replaced.
func (k *keyring) encryptionKey() (string, error) {
	data, ok, err := k.read(EncryptionKeyPath)
	if err != nil {
		return "", err
	}
	if ok {
		key := strings.TrimSpace(string(data))
		if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 32 {
			return "", fmt.Errorf("existing %s is not a 32-byte base64 key: every Secret in etcd is sealed with it, so liftoff will not replace it; restore it from a backup of the output directory", EncryptionKeyPath)
		}
		k.emit(EncryptionKeyPath, KindEncryptionKey, 0o600, []byte(key+"\n"))
		return key, nil
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(k.rand, b); err != nil {
		return "", err
	}
	key := base64.StdEncoding.EncodeToString(b)
	k.changes = append(k.changes, Change{EncryptionKeyPath, "created"})
	k.emit(EncryptionKeyPath, KindEncryptionKey, 0o600, []byte(key+"\n"))
	return key, nil
}
