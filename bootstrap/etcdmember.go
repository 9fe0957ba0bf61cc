package bootstrap

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/liftoff-k8s/liftoff/generator"
	"github.com/liftoff-k8s/liftoff/spec"
)

// EtcdMember is one etcd member of a rendered cluster: its machine, whose name is also the
// member's etcd name, and the URLs its rendered configuration advertises.
type EtcdMember struct {
	Name string
	// Role is the machine's: a controller, or the bootstrap machine with its temporary member.
	Role               string
	ClientURL, PeerURL string
}

// EtcdMembers are the etcd members of the cluster rendered in dir, whose index is idx: the
// bootstrap machine's, if it has one, and every controller's, in name order.
func EtcdMembers(dir string, idx *generator.Index) ([]EtcdMember, error) {
	var out []EtcdMember
	for _, a := range idx.Assets {
		if a.Kind != generator.KindIgnition || (a.Role != spec.RoleController && a.Role != spec.RoleBootstrap) {
			continue
		}
		m, err := etcdMember(filepath.Join(dir, generator.OutPKIDir), a.Node, a.Role)
		if err != nil {
			return nil, fmt.Errorf("etcd member %s: %w", a.Node, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// etcdMember is the member on machine node, at the address of its rendered etcd server
// certificate, which holds exactly that machine's address.
func etcdMember(pkiDir, node, role string) (EtcdMember, error) {
	ip, err := certificateAddress(filepath.Join(pkiDir, "etcd", node, "server.crt"))
	if err != nil {
		return EtcdMember{}, fmt.Errorf("its address is unknown: %w", err)
	}
	url := func(port int) string { return "https://" + net.JoinHostPort(ip, strconv.Itoa(port)) }
	return EtcdMember{Name: node, Role: role, ClientURL: url(generator.EtcdClientPort), PeerURL: url(generator.EtcdPeerPort)}, nil
}
