package generator

import (
	"fmt"
	"time"

	"github.com/liftoff-k8s/liftoff/generator/pki"
)

// Certificate describes one rendered certificate for people: `liftoff certs` and the Terraform
// provider's expiry warnings both read it.
type Certificate struct {
	Path      string
	Subject   string
	Issuer    string
	DNSNames  []string
	IPs       []string
	NotBefore time.Time
	NotAfter  time.Time
	IsCA      bool
	// Purpose says what the certificate is for, and On which machines have it: "every machine",
	// "controllers", a member's name, or "output only" for one that stays in the output directory.
	Purpose, On string
}

// ExpiresWithin reports whether the certificate expires within window of now.
func (c Certificate) ExpiresWithin(now time.Time, window time.Duration) bool {
	return pki.DueForRenewal(c.NotAfter, now, window)
}

// Certificates lists every certificate among the assets, in path order.
func Certificates(files []Asset) ([]Certificate, error) {
	var out []Certificate
	for _, a := range files {
		if a.Kind != KindCertificate {
			continue
		}
		cert, err := pki.ParseCert(a.Data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Path, err)
		}
		c := Certificate{Path: a.Path, Subject: cert.Subject.String(), Issuer: cert.Issuer.String(),
			DNSNames: cert.DNSNames, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, IsCA: cert.IsCA}
		c.Purpose, c.On = describeCert(a.Path)
		for _, ip := range cert.IPAddresses {
			c.IPs = append(c.IPs, ip.String())
		}
		out = append(out, c)
	}
	return out, nil
}
