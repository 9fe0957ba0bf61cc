// Package etcdadmin operates the etcd of a rendered cluster from its output directory: it saves
// snapshots, restores members' data directories from one after a loss of quorum, and replaces a
// member lost for good while the others keep quorum.
//
// INPUTS: a render's output directory (index.json names the controllers; pki/ holds each member's
// certificates, which name its address, and the apiservers' etcd client certificate, with which
// liftoff talks to etcd), and for restore a snapshot file with its SHA-256 beside it.
//
// OUTPUTS: a snapshot file (mode 0600) and FILE.sha256 in sha256sum's format; a member's data
// directory, as `etcdutl snapshot restore` writes it, for the rendered cluster's members and
// token, so that the rendered etcd configuration starts on it; etcd's membership changed by the
// replacement, which the replacement machine's etcd joins (see generator's liftoff-etcd-join).
package etcdadmin
