package generator

import (
	"fmt"
	"strings"

	"github.com/liftoff-k8s/liftoff/templates"
)

// A cluster whose controllers were all lost comes back from a snapshot with the PKI it had: the
// spec's etcd_restore has every controller restore its etcd member from the snapshot before etcd
// first starts, as `liftoff etcd restore` would, so that the members form a new cluster holding the
// snapshot's data. liftoff-etcd-restore.service does it before etcd.service, on a machine whose
// data directory holds no member, and only when no other member answers or the running members
// list this one as a member of the restored cluster that never started (liftoff-etcd-join
// --standing). Any other member without data (a replacement added by `liftoff etcd replace`, one
// that lost its data) starts as liftoff-etcd-join decides, as without a snapshot: restoring the old
// snapshot would start it on data the running members have moved past.
const (
	HostEtcdRestoreScript = "/opt/liftoff/bin/liftoff-etcd-restore"
	// EtcdRestoreScriptTemplate is the script's path in templates.FS.
	EtcdRestoreScriptTemplate = "butane/liftoff-etcd-restore.sh"
)

// EtcdRevisionBump is how far a restore moves etcd's revision past the snapshot's, marking everything
// before compacted. Kubernetes clients remember revisions (resourceVersions): without the bump a
// restored cluster would hand out revisions they have already seen for different objects, and
// their watches would miss changes; with it, their next watch is told to list again. Every member
// restored from one snapshot gets the same bump, as their revisions must agree.
const EtcdRevisionBump = 1_000_000_000

// etcdRestore is what a controller gets to restore its etcd member from the spec's snapshot: the
// service and the script it runs.
type etcdRestore struct {
	Service string
	Script  hostFile
}

// etcdRestoreUnit renders a controller's liftoff-etcd-restore service, or nil when the spec
// restores nothing. Every controller gets the same: the script reads the member's name and peer URL
// from the member's etcd configuration.
func etcdRestoreUnit(d *Cluster) (*etcdRestore, error) {
	r := d.Spec.EtcdRestore
	if r == nil {
		return nil, nil
	}
	script, err := templates.FS.ReadFile(EtcdRestoreScriptTemplate)
	if err != nil {
		return nil, err
	}
	// The restored cluster is the controllers' members, as `liftoff etcd restore` makes it: a
	// bootstrap machine's member is temporary.
	var initial []string
	for _, m := range d.Controllers {
		initial = append(initial, fmt.Sprintf("%s=https://%s:%d", m.Name, m.IP, EtcdPeerPort))
	}
	service, err := execute("etcd-restore.service.tmpl", map[string]any{
		"Cluster": d.Name, "InitialCluster": strings.Join(initial, ","), "RevisionBump": EtcdRevisionBump,
		// systemd reads % in a unit as a specifier; the spec allows nothing else that needs quoting.
		"URL": strings.ReplaceAll(r.URL, "%", "%%"), "SHA256": r.SHA256,
		"Script": HostEtcdRestoreScript, "Config": HostEtcdConfig, "DataDir": HostEtcdDataDir, "Join": HostEtcdJoinScript,
		"Etcdutl": etcdTool(d.Spec, "etcdutl", HostEtcdDataDir),
	})
	if err != nil {
		return nil, err
	}
	return &etcdRestore{Service: service, Script: hostFile{Path: HostEtcdRestoreScript, Mode: 0o755, Text: string(script)}}, nil
}
