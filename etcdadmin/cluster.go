package etcdadmin

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/liftoff-k8s/liftoff/bootstrap"
	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/internal/outdir"
	"github.com/liftoff-k8s/liftoff/spec"
)

// Cluster is the etcd of a rendered cluster: its permanent members, the controllers'. A bootstrap
// machine's temporary member is not one of them: the pivot removes it.
type Cluster struct {
	// Dir is the render's output directory.
	Dir string
	// Name is the cluster's name, which its members were started with as initial-cluster-token.
	Name    string
	Members []bootstrap.EtcdMember
}

// Open reads the etcd members of the cluster rendered in dir.
func Open(dir string) (*Cluster, error) {
	_, idx, err := outdir.Open(dir)
	if err != nil {
		return nil, err
	}
	if idx == nil {
		return nil, fmt.Errorf("%s holds no liftoff render (no %s): give the output directory of liftoff render", dir, generator.IndexPath)
	}
	all, err := bootstrap.EtcdMembers(dir, idx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	c := &Cluster{Dir: dir, Name: idx.Cluster}
	for _, m := range all {
		if m.Role == spec.RoleController {
			c.Members = append(c.Members, m)
		}
	}
	if len(c.Members) == 0 {
		return nil, fmt.Errorf("%s renders no controller, so no etcd member", dir)
	}
	return c, nil
}

// Member is the member named name.
func (c *Cluster) Member(name string) (bootstrap.EtcdMember, error) {
	var names []string
	for _, m := range c.Members {
		if m.Name == name {
			return m, nil
		}
		names = append(names, m.Name)
	}
	return bootstrap.EtcdMember{}, fmt.Errorf("cluster %s has no etcd member %q: its members are the controllers %s", c.Name, name, strings.Join(names, ", "))
}

// ClientURLs are the members' client URLs.
func (c *Cluster) ClientURLs() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// InitialCluster is etcd's initial-cluster for the members: name=peer URL, comma-separated.
func (c *Cluster) InitialCluster() string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.Name+"="+m.PeerURL)
	}
	return strings.Join(out, ",")
}

// TLS is the client TLS configuration liftoff reaches etcd with: the apiservers' etcd client
// certificate and the etcd CA from the render's PKI.
func (c *Cluster) TLS() (*tls.Config, error) {
	pkiDir := filepath.Join(c.Dir, generator.OutPKIDir)
	cfg, err := bootstrap.EtcdClientTLS(pkiDir)
	if err != nil {
		return nil, fmt.Errorf("reaching etcd with the apiservers' etcd client certificate from %s: %w", pkiDir, err)
	}
	return cfg, nil
}
