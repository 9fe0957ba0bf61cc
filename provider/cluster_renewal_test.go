package provider

import (
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/spec"
)

// TestRenewalWarnings checks the plan's expiry warnings over a cluster's life: none while every
// certificate is young, leaf certificates inside the window, then the CAs with the way to rotate them.
func TestRenewalWarnings(t *testing.T) {
	c, err := spec.Complete(&spec.Cluster{Name: "life", APIServer: "https://10.0.0.10:6443",
		Controllers: []spec.Node{{Name: "c1", IP: "10.0.0.11"}}})
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	o, err := renderCluster(c, nil, issued)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		at   time.Time
		// want are substrings of the warnings, in order; nil for none.
		want []string
	}{
		{"new", issued.Add(time.Hour), nil},
		{"leaves inside the window", issued.Add(8760*time.Hour - 100*time.Hour), []string{
			"Certificates inside the renewal window", "pki/apiserver/c1.crt (CN=kube-apiserver) expires 2027-01-01T00:00:00Z", "same CA"}},
		{"CAs inside the window", issued.Add(87600*time.Hour - 100*time.Hour), []string{
			"Certificates inside the renewal window", "pki/apiserver/c1.crt (CN=kube-apiserver) expired",
			"CA certificates inside the renewal window", "pki/ca.crt", "pki/etcd/ca.crt", "pki/front-proxy-ca.crt", "docs/ca-rotation.md"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			diags := renewalWarnings(o.out, tc.at, c.PKI.RenewBefore)
			if diags.HasError() {
				t.Fatal(diags)
			}
			var text strings.Builder
			for _, d := range diags {
				text.WriteString(d.Summary() + "\n" + d.Detail() + "\n")
			}
			if tc.want == nil && len(diags) > 0 {
				t.Fatalf("unexpected warnings:\n%s", text.String())
			}
			rest := text.String()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("warnings lack %q (in order):\n%s", w, text.String())
				}
				rest = rest[i+len(w):]
			}
		})
	}
}
