package generator

import (
	"fmt"
	"path"

	"sigs.k8s.io/yaml"
)

// etcdConfig is a member's etcd configuration file. Client and peer traffic both require
// certificates signed by the etcd CA; the member listens only on its own address. etcd reads its
// certificates and keys from its own directory, HostEtcdMemberPKIDir.
func etcdConfig(d *Cluster, m Machine) ([]byte, error) {
	tls := func(cert, key string) map[string]any {
		return map[string]any{
			"cert-file":        etcdMemberFile(cert),
			"key-file":         etcdMemberFile(key),
			"trusted-ca-file":  etcdMemberFile(EtcdCACert),
			"client-cert-auth": true,
		}
	}
	client := fmt.Sprintf("https://%s:%d", m.IP, EtcdClientPort)
	peer := fmt.Sprintf("https://%s:%d", m.IP, EtcdPeerPort)
	cfg := map[string]any{
		"name":                        m.Name,
		"data-dir":                    HostEtcdDataDir,
		"listen-client-urls":          client,
		"advertise-client-urls":       client,
		"listen-peer-urls":            peer,
		"initial-advertise-peer-urls": peer,
		"initial-cluster":             d.EtcdInitialCluster,
		"initial-cluster-state":       "new",
		"initial-cluster-token":       d.Name,
		"client-transport-security":   tls(EtcdServerCert, EtcdServerKey),
		"peer-transport-security":     tls(EtcdPeerCert, EtcdPeerKey),
		"cipher-suites":               TLSCipherSuites,
		"tls-min-version":             "TLS1.2",
		"auto-compaction-mode":        "periodic",
		"auto-compaction-retention":   "1h",
		"snapshot-count":              10000,
		"logger":                      "zap",
		"log-outputs":                 []string{"stderr"},
	}
	return yaml.Marshal(cfg)
}

// etcdMemberFile is where etcd's copy of one of its PKI files (EtcdCACert, EtcdServerKey, …) is on
// a machine.
func etcdMemberFile(name string) string {
	return path.Join(HostEtcdMemberPKIDir, path.Base(name))
}
