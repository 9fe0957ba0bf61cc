package generator

import (
	"fmt"

	"github.com/liftoff-k8s/liftoff/templates"
)

// A controller's etcd decides at every start whether it forms a new cluster or joins a running
// one. The rendered configuration says initial-cluster-state new, which a member needs to form the
// cluster with the others; but the replacement of a member lost for good (`liftoff etcd replace`)
// boots the same Ignition config with an empty data directory and must join as existing. etcd
// reads only its configuration file when it has one, so the etcd unit runs liftoff-etcd-join
// first: it writes HostEtcdStartConfig from HostEtcdConfig, switching to existing only when the
// data directory is empty and the running members list this member as added and never started.
const (
	HostEtcdJoinScript  = "/opt/liftoff/bin/liftoff-etcd-join"
	HostEtcdStartConfig = "/etc/etcd/etcd.start.yaml"
)

// EtcdJoinScriptTemplate is the script's path in templates.FS.
const EtcdJoinScriptTemplate = "butane/liftoff-etcd-join.sh"

// etcdJoinCommand is the etcd unit's ExecStartPre. It runs as root ("+"): it reads the rendered
// configuration, which is root's, and hands etcd's user its data directory and start configuration.
var etcdJoinCommand = fmt.Sprintf("+%s %s %s %s:%s", HostEtcdJoinScript, HostEtcdConfig, HostEtcdStartConfig, EtcdUser, EtcdUser)

// etcdJoinFile is the script as a file of every machine that runs etcd.
var etcdJoinFile = func() hostFile {
	script, err := templates.FS.ReadFile(EtcdJoinScriptTemplate)
	if err != nil {
		panic(err) // embedded: only a build without the file gets here
	}
	return hostFile{Path: HostEtcdJoinScript, Mode: 0o755, Text: string(script)}
}()
