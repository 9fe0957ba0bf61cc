package csrapprover

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
)

// A node's kubelet authenticates as user system:node:NAME in group system:nodes, and names its
// serving certificate's subject the same way.
const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// Reasons of the conditions the approver records on a request.
const (
	ReasonApproved = "LiftoffKubeletServingApproved"
	ReasonDenied   = "LiftoffKubeletServingDenied"
)

// Decision is the outcome of reviewing one request.
type Decision struct {
	// Approve is true only when every check passed.
	Approve bool
	// Message says what was approved, or which check failed.
	Message string
}

func denied(format string, args ...any) Decision {
	return Decision{Message: fmt.Sprintf(format, args...)}
}

// NodeName is the node whose kubelet made the request, "" when the requester is not a node's user.
func NodeName(csr *certificatesv1.CertificateSigningRequest) string {
	name, ok := strings.CutPrefix(csr.Spec.Username, nodeUserPrefix)
	if !ok {
		return ""
	}
	return name
}

// serving usages: a kubelet always asks for these two, and for key encipherment too when its key is RSA.
var (
	requiredUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	optionalUsages = []certificatesv1.KeyUsage{certificatesv1.UsageKeyEncipherment}
)

// Review decides a kubelet-serving request. node is the Node the requester is (see NodeName) as the
// API has it now, nil when there is none. The request is approved only when it comes from that
// node's kubelet, names that node as its subject, asks for a serving certificate only, and names
// only that node's own hostnames and addresses.
func Review(csr *certificatesv1.CertificateSigningRequest, node *corev1.Node) Decision {
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		return denied("the signer is %q, not %s", csr.Spec.SignerName, certificatesv1.KubeletServingSignerName)
	}
	name := NodeName(csr)
	if name == "" || !slices.Contains(csr.Spec.Groups, nodesGroup) {
		return denied("requested by user %q in groups %v: only a node's kubelet (user %sNAME in group %s) may request a serving certificate",
			csr.Spec.Username, csr.Spec.Groups, nodeUserPrefix, nodesGroup)
	}
	req, err := parseRequest(csr.Spec.Request)
	if err != nil {
		return denied("the request is not usable: %v", err)
	}
	if problem := subjectProblem(req, csr.Spec.Username); problem != "" {
		return denied("%s", problem)
	}
	for _, u := range csr.Spec.Usages {
		if !slices.Contains(requiredUsages, u) && !slices.Contains(optionalUsages, u) {
			return denied("usage %q is not one of a serving certificate's (%s, optionally %s)", u, joinUsages(requiredUsages), joinUsages(optionalUsages))
		}
	}
	for _, u := range requiredUsages {
		if !slices.Contains(csr.Spec.Usages, u) {
			return denied("usages %s lack %q, which a serving certificate needs", joinUsages(csr.Spec.Usages), u)
		}
	}
	switch {
	case len(req.EmailAddresses) > 0:
		return denied("the request names email addresses %v; a kubelet's serving certificate names only its node's hostnames and addresses", req.EmailAddresses)
	case len(req.URIs) > 0:
		return denied("the request names URIs %v; a kubelet's serving certificate names only its node's hostnames and addresses", req.URIs)
	case len(req.DNSNames) == 0 && len(req.IPAddresses) == 0:
		return denied("the request names no DNS name or IP address to serve")
	}
	if node == nil || node.Name != name {
		return denied("node %s does not exist", name)
	}
	var names []string
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(node.Status.Addresses, func(a corev1.NodeAddress) bool { return ip.Equal(net.ParseIP(a.Address)) }) {
			return denied("IP address %s is not one of node %s's addresses (%s)", ip, name, describeAddresses(node.Status.Addresses))
		}
		names = append(names, ip.String())
	}
	for _, dns := range req.DNSNames {
		if !slices.ContainsFunc(node.Status.Addresses, func(a corev1.NodeAddress) bool { return a.Address == dns && isDNSAddress(a.Type) }) {
			return denied("DNS name %s is not one of node %s's hostnames (%s)", dns, name, describeAddresses(node.Status.Addresses))
		}
		names = append(names, dns)
	}
	return Decision{Approve: true, Message: fmt.Sprintf("the kubelet of node %s requested a serving certificate for its own addresses %s", name, strings.Join(names, ", "))}
}

func isDNSAddress(t corev1.NodeAddressType) bool {
	return t == corev1.NodeHostName || t == corev1.NodeInternalDNS || t == corev1.NodeExternalDNS
}

func describeAddresses(as []corev1.NodeAddress) string {
	if len(as) == 0 {
		return "it has none yet"
	}
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = fmt.Sprintf("%s %s", a.Type, a.Address)
	}
	return strings.Join(out, ", ")
}

func joinUsages(us []certificatesv1.KeyUsage) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = string(u)
	}
	return strings.Join(out, ", ")
}

// parseRequest reads the one PEM certificate request of a CSR and checks that it is signed by the
// key it holds.
func parseRequest(data []byte) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("spec.request holds no PEM CERTIFICATE REQUEST")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("spec.request holds more than one PEM block")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("spec.request: %w", err)
	}
	if err := req.CheckSignature(); err != nil {
		return nil, fmt.Errorf("spec.request is not signed by the key it holds: %w", err)
	}
	return req, nil
}

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// subjectProblem says what is wrong with a request's subject, which must be exactly
// CN=system:node:NAME, O=system:nodes for the requesting node: the signer copies it into the
// certificate.
func subjectProblem(req *x509.CertificateRequest, user string) string {
	var cns, orgs, other []string
	for _, atv := range req.Subject.Names {
		switch {
		case atv.Type.Equal(oidCommonName):
			cns = append(cns, fmt.Sprint(atv.Value))
		case atv.Type.Equal(oidOrganization):
			orgs = append(orgs, fmt.Sprint(atv.Value))
		default:
			other = append(other, atv.Type.String())
		}
	}
	switch {
	case !slices.Equal(cns, []string{user}):
		return fmt.Sprintf("the subject's common name is %q, not the requesting node's %q", strings.Join(cns, ", "), user)
	case !slices.Equal(orgs, []string{nodesGroup}):
		return fmt.Sprintf("the subject's organization is %q, not %q", strings.Join(orgs, ", "), nodesGroup)
	case len(other) > 0:
		return fmt.Sprintf("the subject has attributes besides CN and O (%s)", strings.Join(other, ", "))
	}
	return ""
}
