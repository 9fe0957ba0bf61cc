package generator_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/etcdtest"
)

const loopbackCluster = `cluster "etcdproof" {
  api_server = "https://PREFIX10:6443"
  controller "c1" {
    ip     = "PREFIX11"
    domain = "c1.etcdproof.test"
  }
  controller "c2" {
    ip     = "PREFIX12"
    domain = "c2.etcdproof.test"
  }
  controller "c3" {
    ip     = "PREFIX13"
    domain = "c3.etcdproof.test"
  }
}
`

// TestRealEtcdClusterWithRenderedCertificates starts a three-member etcd cluster on loopback
// addresses from each controller's rendered etcd configuration and certificates (as Ignition places
// them), with peer and client certificate authentication on, and checks its health through a client
// holding the rendered apiserver→etcd client certificate.
func TestRealEtcdClusterWithRenderedCertificates(t *testing.T) {
	_, res := renderSource(t, strings.ReplaceAll(loopbackCluster, "PREFIX", etcdtest.FreePrefix(t, 3)))
	var endpoints []string
	for _, m := range etcdtest.Members(t, res.Assets, t.TempDir()) {
		cfg := m.Config(t, generator.HostEtcdConfig)
		for _, sec := range []string{"client-transport-security", "peer-transport-security"} {
			if cfg[sec].(map[string]any)["client-cert-auth"] != true {
				t.Fatalf("%s: %s.client-cert-auth is not on", m.Name, sec)
			}
		}
		for _, k := range []string{"listen-client-urls", "listen-peer-urls"} {
			if !strings.HasPrefix(cfg[k].(string), "https://") {
				t.Fatalf("%s: %s is not TLS: %v", m.Name, k, cfg[k])
			}
		}
		m.Start(t, generator.HostEtcdConfig)
		endpoints = append(endpoints, m.ClientURL)
	}

	client := func(withCert bool) *clientv3.Client {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(res.Assets.Get("pki/etcd/ca.crt").Data)
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		if withCert {
			pair, err := tls.X509KeyPair(res.Assets.Get("pki/apiserver-etcd-client.crt").Data, res.Assets.Get("pki/apiserver-etcd-client.key").Data)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: tc, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	cli := client(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Members elect a leader once all three are up; Status answers per endpoint.
	etcdtest.WaitHealthy(t, cli, endpoints...)
	members, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 3 {
		t.Fatalf("%d members, want 3", len(members.Members))
	}
	for _, m := range members.Members {
		if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "https://127.") {
			t.Errorf("member %s peer URLs %v", m.Name, m.PeerURLs)
		}
	}
	if _, err := cli.Put(ctx, "/liftoff/proof", "ok"); err != nil {
		t.Fatal(err)
	}
	if got, err := cli.Get(ctx, "/liftoff/proof"); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "ok" {
		t.Fatalf("read back: %v %v", got, err)
	}

	// Without a client certificate the cluster refuses the client.
	anon := client(false)
	short, cancelShort := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShort()
	if _, err := anon.Get(short, "/liftoff/proof"); err == nil {
		t.Error("etcd answered a client without a certificate")
	}
}
