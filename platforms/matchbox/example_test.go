package matchbox_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/internal/testbin"
	"github.com/liftoff-k8s/liftoff/platforms/internal/matchboxtest"
	"github.com/liftoff-k8s/liftoff/platforms/internal/testcluster"
	"github.com/liftoff-k8s/liftoff/platforms/matchbox"
	"github.com/liftoff-k8s/liftoff/spec"
)

const exampleDir = "../../examples/bare-metal"

// TestBareMetalExampleThroughTerraform renders examples/bare-metal/cluster.hcl, applies
// examples/bare-metal/main.tf with the real terraform and the real matchbox provider to a real
// matchbox whose gRPC API demands client certificates, and checks that matchbox then boots every
// machine exactly as it does when it serves the rendered data directory itself.
func TestBareMetalExampleThroughTerraform(t *testing.T) {
	terraform, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("this test applies examples/bare-metal with terraform, which is not on PATH: install terraform 1.11.4 (%v)", err)
	}
	provider := testbin.MustPath(t, "terraform-provider-matchbox")

	c, diags := spec.ReadFile(filepath.Join(exampleDir, "cluster.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	full, err := spec.Complete(c)
	if err != nil {
		t.Fatal(err)
	}
	r := testcluster.RenderWith(t, full, generator.Options{Now: testcluster.Now})
	assets := filepath.Join(t.TempDir(), "assets")
	if err := outdir.Write(assets, r.Assets); err != nil {
		t.Fatal(err)
	}

	// matchbox with an empty store, filled only through its gRPC API.
	tlsDir := t.TempDir()
	writeTLS(t, tlsDir)
	store := t.TempDir()
	rpcPort := matchboxtest.FreePort(t)
	viaAPI := matchboxtest.Start(t, matchboxtest.FreePort(t), store,
		"-rpc-address", fmt.Sprintf("127.0.0.1:%d", rpcPort),
		"-ca-file", filepath.Join(tlsDir, "ca.crt"),
		"-cert-file", filepath.Join(tlsDir, "server.crt"),
		"-key-file", filepath.Join(tlsDir, "server.key"))

	// terraform reaches no registry here: the provider comes from a development override.
	work := t.TempDir()
	for _, f := range []string{"main.tf"} {
		writeFile(t, filepath.Join(work, f), string(readFile(t, filepath.Join(exampleDir, f))))
	}
	cliConfig := filepath.Join(work, "terraform.rc")
	writeFile(t, cliConfig, fmt.Sprintf(`provider_installation {
  dev_overrides {
    "poseidon/matchbox" = %q
  }
  direct {}
}
`, filepath.Dir(provider)))
	tf := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), terraform, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
			"TF_VAR_assets_dir="+assets,
			fmt.Sprintf("TF_VAR_matchbox_rpc_endpoint=127.0.0.1:%d", rpcPort),
			"TF_VAR_matchbox_ca="+filepath.Join(tlsDir, "ca.crt"),
			"TF_VAR_matchbox_client_cert="+filepath.Join(tlsDir, "client.crt"),
			"TF_VAR_matchbox_client_key="+filepath.Join(tlsDir, "client.key"))
		cmd.WaitDelay = 10 * time.Second
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := tf("apply", "-auto-approve", "-input=false", "-no-color"); err != nil {
		t.Fatalf("terraform apply: %v\n%s", err, out)
	}
	// A second plan finds nothing to change: what the provider reads back is what it wrote.
	if out, err := tf("plan", "-detailed-exitcode", "-input=false", "-no-color"); err != nil {
		t.Fatalf("terraform plan after apply wants changes (%v):\n%s", err, out)
	}

	fromFiles := matchboxtest.Start(t, matchboxtest.FreePort(t), filepath.Join(assets, matchbox.DataDir))
	for _, n := range full.Machines() {
		mac := hexhyp(n.MAC)
		for _, q := range []string{
			"/ipxe?mac=" + mac,
			"/ignition?mac=" + mac,
			"/ignition?mac=" + mac + "&os=installed",
		} {
			got, want := viaAPI.Get(t, q), fromFiles.Get(t, q)
			if !bytes.Equal(got, want) {
				t.Errorf("%s: matchbox filled by terraform serves\n%s\nwhile the rendered data directory serves\n%s", q, got, want)
			}
		}
		final := viaAPI.Get(t, "/ignition?mac="+mac+"&os=installed")
		if !bytes.Equal(final, r.Assets.Get("ignition/"+n.Name+".ign").Data) {
			t.Errorf("%s: final config served after terraform apply differs from ignition/%s.ign", n.Name, n.Name)
		}
		if script := string(viaAPI.Get(t, "/ipxe?mac="+mac)); !strings.Contains(script, "flatcar.config.url=http://matchbox.example.com:8080/ignition?mac=${mac:hexhyp}") {
			t.Errorf("%s: iPXE script does not point Flatcar at its install config:\n%s", n.Name, script)
		}
	}
}

// writeTLS writes a throwaway CA, a server certificate for 127.0.0.1 and a client certificate, as
// matchbox's gRPC API requires.
func writeTLS(t *testing.T, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name string, der []byte, k *ecdsa.PrivateKey) {
		writeFile(t, filepath.Join(dir, name+".crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name+".key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	}
	now := time.Now()
	caKey := key()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "matchbox test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca", caDER, caKey)
	for i, leaf := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		k := key()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "matchbox " + leaf.name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage},
		}
		if leaf.name == "server" {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(leaf.name, der, k)
	}
}
