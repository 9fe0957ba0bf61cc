// Package pki issues and checks the certificates of a liftoff cluster: certificate authorities,
// serving, client and peer certificates, with ECDSA or RSA keys. It is pure: time and randomness are
// parameters, so callers decide when "now" is and tests can fix it.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"sort"
	"strings"
	"time"
)

// Usage is what a certificate is for.
type Usage int

// Usages.
const (
	UsageCA Usage = iota
	UsageServer
	UsageClient
	// UsagePeer is both server and client (etcd peers).
	UsagePeer
)

func (u Usage) extKeyUsage() []x509.ExtKeyUsage {
	switch u {
	case UsageServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case UsageClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case UsagePeer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return nil
}

// Template says what a certificate must contain.
type Template struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usage        Usage
}

// KeyPair is a certificate and its private key.
type KeyPair struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// GenerateKey makes a private key: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096.
func GenerateKey(algorithm string, rand io.Reader) (crypto.Signer, error) {
	switch algorithm {
	case "ecdsa-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case "ecdsa-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand)
	case "rsa-2048":
		return rsa.GenerateKey(rand, 2048)
	case "rsa-3072":
		return rsa.GenerateKey(rand, 3072)
	case "rsa-4096":
		return rsa.GenerateKey(rand, 4096)
	}
	return nil, fmt.Errorf("unknown key algorithm %q", algorithm)
}

// Algorithm names a key's algorithm in the spec's terms.
func Algorithm(key crypto.PublicKey) string {
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-" + strings.ToLower(strings.ReplaceAll(k.Curve.Params().Name, "-", ""))
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", key)
}

// NewCA makes a self-signed certificate authority valid from now for validity.
func NewCA(t Template, key crypto.Signer, now time.Time, validity time.Duration, rand io.Reader) (*KeyPair, error) {
	t.Usage = UsageCA
	tmpl, err := certificate(t, key.Public(), now, validity, rand)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing CA %q: %w", t.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key}, nil
}

// Sign issues a certificate for key, signed by ca. It never outlives the CA.
func Sign(ca *KeyPair, t Template, key crypto.PublicKey, now time.Time, validity time.Duration, rand io.Reader) (*x509.Certificate, error) {
	if until := ca.Cert.NotAfter.Sub(now); validity > until {
		validity = until
	}
	tmpl, err := certificate(t, key, now, validity, rand)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca.Cert, key, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", t.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

func certificate(t Template, pub crypto.PublicKey, now time.Time, validity time.Duration, rand io.Reader) (*x509.Certificate, error) {
	serial, err := randSerial(rand)
	if err != nil {
		return nil, err
	}
	c := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: t.CommonName, Organization: t.Organization},
		DNSNames:     t.DNSNames,
		IPAddresses:  t.IPs,
		// A minute of slack for machines whose clocks run a little behind the one that rendered.
		NotBefore:             now.Add(-time.Minute).UTC().Truncate(time.Second),
		NotAfter:              now.Add(validity).UTC().Truncate(time.Second),
		BasicConstraintsValid: true,
		ExtKeyUsage:           t.Usage.extKeyUsage(),
	}
	if t.Usage == UsageCA {
		// The CAs sign leaves only: a certificate they issue can never sign another (pathlen:0).
		c.IsCA, c.MaxPathLen, c.MaxPathLenZero = true, 0, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		c.SubjectKeyId = keyID(pub)
	} else {
		c.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := pub.(*rsa.PublicKey); ok {
			c.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	return c, nil
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha1.Sum(der)
	return sum[:]
}

func randSerial(rand io.Reader) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := randInt(rand, limit)
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func randInt(rand io.Reader, limit *big.Int) (*big.Int, error) {
	b := make([]byte, (limit.BitLen()+7)/8)
	if _, err := io.ReadFull(rand, b); err != nil {
		return nil, err
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b), limit), nil
}

// Mismatch says why cert cannot be kept for t under ca at now, or "" when it can. A certificate is
// kept when it was signed by ca, matches the template exactly, and does not expire within renewBefore.
func Mismatch(cert *x509.Certificate, ca *x509.Certificate, t Template, key crypto.PublicKey, now time.Time, renewBefore time.Duration) string {
	switch {
	case ca != nil && cert.CheckSignatureFrom(ca) != nil:
		return "not signed by the current CA"
	case !samePublicKey(cert.PublicKey, key):
		return "its key changed"
	case cert.Subject.CommonName != t.CommonName || !slices.Equal(cert.Subject.Organization, t.Organization):
		return "its subject changed"
	case !sameSet(cert.DNSNames, t.DNSNames) || !sameSet(ipStrings(cert.IPAddresses), ipStrings(t.IPs)):
		return "its subject alternative names changed"
	case !slices.Equal(cert.ExtKeyUsage, t.Usage.extKeyUsage()):
		return "its usage changed"
	case now.Before(cert.NotBefore):
		return "it is not valid yet"
	case DueForRenewal(cert.NotAfter, now, renewBefore):
		return fmt.Sprintf("it expires %s, within the renewal window", cert.NotAfter.Format(time.RFC3339))
	}
	return ""
}

// DueForRenewal is the renewal policy: a certificate is renewed once it expires within the
// renewal window of now. Rendering re-issues such a leaf certificate; `liftoff certs` and the
// Terraform provider flag it.
func DueForRenewal(notAfter, now time.Time, window time.Duration) bool {
	return !now.Add(window).Before(notAfter)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// EncodeCert returns a certificate as PEM.
func EncodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// EncodeKey returns a private key as PKCS#8 PEM.
func EncodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey returns a public key as PKIX PEM.
func EncodePublicKey(k crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// ParseKey reads a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func ParseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM private key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unreadable PEM private key")
}

// Matches reports whether a certificate was issued for key.
func Matches(cert *x509.Certificate, key crypto.Signer) bool {
	return samePublicKey(cert.PublicKey, key.Public())
}
