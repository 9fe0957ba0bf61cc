package csrapprover

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var testKey = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// kubeletRequest is what a kubelet of node name asks for: its node identity as the subject, its
// hostname and address as names.
func kubeletRequest(name string, ip string) *x509.CertificateRequest {
	return &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}},
		DNSNames:    []string{name},
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}
}

func encodeRequest(t *testing.T, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, testKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// servingCSR is a kubelet-serving CSR as the kubelet of node name creates it.
func servingCSR(t *testing.T, name string, req *x509.CertificateRequest) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-" + name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    encodeRequest(t, req),
			SignerName: certificatesv1.KubeletServingSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
			Username:   "system:node:" + name,
			Groups:     []string{"system:nodes", "system:authenticated"},
		},
	}
}

func testNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.11"},
			{Type: corev1.NodeExternalIP, Address: "203.0.113.5"},
			{Type: corev1.NodeHostName, Address: "n1"},
			{Type: corev1.NodeInternalDNS, Address: "n1.internal"},
			{Type: corev1.NodeExternalDNS, Address: "n1.example.com"},
		}},
	}
}

func TestReview(t *testing.T) {
	cases := []struct {
		name string
		// edit changes the x509 request before it is signed, then the CSR object.
		editRequest func(r *x509.CertificateRequest)
		editCSR     func(c *certificatesv1.CertificateSigningRequest)
		noNode      bool
		// approve, or the words the denial must say.
		approve bool
		denial  string
	}{
		{name: "the kubelet's own request", approve: true},
		{name: "with key encipherment, as a kubelet with an RSA key asks", approve: true,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageKeyEncipherment)
			}},
		{name: "every kind of node address", approve: true,
			editRequest: func(r *x509.CertificateRequest) {
				r.DNSNames = []string{"n1", "n1.internal", "n1.example.com"}
				r.IPAddresses = []net.IP{net.ParseIP("10.0.0.11"), net.ParseIP("203.0.113.5")}
			}},
		{name: "only an IP address", approve: true,
			editRequest: func(r *x509.CertificateRequest) { r.DNSNames = nil }},

		{name: "another signer", denial: `the signer is "kubernetes.io/kube-apiserver-client-kubelet"`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.SignerName = certificatesv1.KubeAPIServerClientKubeletSignerName
			}},
		{name: "requested by a service account", denial: `requested by user "system:serviceaccount:kube-system:x"`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Username = "system:serviceaccount:kube-system:x"
				c.Spec.Groups = []string{"system:serviceaccounts", "system:authenticated"}
			}},
		{name: "a node user outside system:nodes", denial: "only a node's kubelet",
			editCSR: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Groups = []string{"system:authenticated"} }},
		{name: "a node user without a name", denial: "only a node's kubelet",
			editCSR: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Username = "system:node:" }},
		{name: "for another node", denial: `the subject's common name is "system:node:n2", not the requesting node's "system:node:n1"`,
			editRequest: func(r *x509.CertificateRequest) { r.Subject.CommonName = "system:node:n2" }},
		{name: "without an organization", denial: `the subject's organization is "", not "system:nodes"`,
			editRequest: func(r *x509.CertificateRequest) { r.Subject.Organization = nil }},
		{name: "in system:masters too", denial: `the subject's organization is "system:nodes, system:masters"`,
			editRequest: func(r *x509.CertificateRequest) {
				r.Subject.Organization = append(r.Subject.Organization, "system:masters")
			}},
		{name: "with an organizational unit", denial: "the subject has attributes besides CN and O (2.5.4.11)",
			editRequest: func(r *x509.CertificateRequest) { r.Subject.OrganizationalUnit = []string{"ops"} }},
		{name: "for client authentication too", denial: `usage "client auth" is not one of a serving certificate's`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageClientAuth)
			}},
		{name: "to sign certificates", denial: `usage "cert sign"`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Usages = append(c.Spec.Usages, certificatesv1.UsageCertSign)
			}},
		{name: "without server auth", denial: `lack "server auth"`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}
			}},
		{name: "without digital signature", denial: `lack "digital signature"`,
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth, certificatesv1.UsageKeyEncipherment}
			}},
		{name: "with an email address", denial: "names email addresses [root@n1]",
			editRequest: func(r *x509.CertificateRequest) { r.EmailAddresses = []string{"root@n1"} }},
		{name: "with a URI", denial: "names URIs [spiffe://cluster/n1]",
			editRequest: func(r *x509.CertificateRequest) {
				r.URIs = []*url.URL{{Scheme: "spiffe", Host: "cluster", Path: "/n1"}}
			}},
		{name: "naming nothing", denial: "names no DNS name or IP address",
			editRequest: func(r *x509.CertificateRequest) { r.DNSNames, r.IPAddresses = nil, nil }},
		{name: "another node's address", denial: "IP address 10.0.0.12 is not one of node n1's addresses (InternalIP 10.0.0.11, ",
			editRequest: func(r *x509.CertificateRequest) { r.IPAddresses = append(r.IPAddresses, net.ParseIP("10.0.0.12")) }},
		{name: "the API's address", denial: "DNS name kubernetes.default.svc is not one of node n1's hostnames",
			editRequest: func(r *x509.CertificateRequest) { r.DNSNames = append(r.DNSNames, "kubernetes.default.svc") }},
		{name: "an address as a DNS name", denial: "DNS name 10.0.0.11 is not one of node n1's hostnames",
			editRequest: func(r *x509.CertificateRequest) { r.DNSNames = []string{"10.0.0.11"} }},
		{name: "a node that does not exist", noNode: true, denial: "node n1 does not exist"},
		{name: "not a certificate request", denial: "spec.request holds no PEM CERTIFICATE REQUEST",
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Request = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})
			}},
		{name: "two requests", denial: "more than one PEM block",
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				c.Spec.Request = append(c.Spec.Request, c.Spec.Request...)
			}},
		{name: "a request its key did not sign", denial: "not signed by the key it holds",
			editCSR: func(c *certificatesv1.CertificateSigningRequest) {
				block, _ := pem.Decode(c.Spec.Request)
				// The last byte is the signature's.
				block.Bytes[len(block.Bytes)-1] ^= 0xff
				c.Spec.Request = pem.EncodeToMemory(block)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := kubeletRequest("n1", "10.0.0.11")
			if tc.editRequest != nil {
				tc.editRequest(req)
			}
			csr := servingCSR(t, "n1", req)
			if tc.editCSR != nil {
				tc.editCSR(csr)
			}
			node := testNode()
			if tc.noNode {
				node = nil
			}
			d := Review(csr, node)
			if d.Approve != tc.approve {
				t.Fatalf("approve = %v (%s), want %v", d.Approve, d.Message, tc.approve)
			}
			if !tc.approve && !strings.Contains(d.Message, tc.denial) {
				t.Errorf("denied with %q, want it to say %q", d.Message, tc.denial)
			}
			if tc.approve && !strings.Contains(d.Message, "node n1") {
				t.Errorf("approved with %q, which does not name the node", d.Message)
			}
		})
	}
}

// TestReviewNeedsTheRequestersOwnNode: a Node of another name is no Node at all.
func TestReviewNeedsTheRequestersOwnNode(t *testing.T) {
	other := testNode()
	other.Name = "n2"
	if d := Review(servingCSR(t, "n1", kubeletRequest("n1", "10.0.0.11")), other); d.Approve {
		t.Fatalf("approved against node n2: %s", d.Message)
	}
}

func TestPending(t *testing.T) {
	cases := []struct {
		name    string
		status  certificatesv1.CertificateSigningRequestStatus
		pending bool
	}{
		{"new", certificatesv1.CertificateSigningRequestStatus{}, true},
		{"approved", certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved}}}, false},
		{"denied", certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateDenied}}}, false},
		{"failed", certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateFailed}}}, false},
		{"issued", certificatesv1.CertificateSigningRequestStatus{Certificate: []byte("x")}, false},
	}
	for _, tc := range cases {
		if got := pending(&certificatesv1.CertificateSigningRequest{Status: tc.status}); got != tc.pending {
			t.Errorf("%s: pending = %v, want %v", tc.name, got, tc.pending)
		}
	}
}
