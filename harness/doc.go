// Package harness runs a rendered liftoff cluster on this one host, with real components, for
// tests and demos, the way kind runs real nodes but without Docker. It is test infrastructure: no
// product package imports it.
//
// Each machine of the rendered cluster gets a root directory laid out by applying its rendered
// Ignition config with the real Ignition binary (its disk), a network namespace with its address on
// a bridge the harness creates for the /24 of the spec's api_server (its NIC), and, while it is on,
// a mount and UTS namespace in which its /etc, /opt, /var/lib and /var/log cover the host's, with an
// empty /run and /tmp at every boot. The host's /usr plays the OS image. In there the harness plays
// systemd (systemd.go): it starts the machine's enabled units as rendered — the download units
// (liftoff-fetch against a release host on the gateway), containerd, etcd.service and
// kubelet.service — so the real kubelet runs static pods, DaemonSets and Deployments as real
// containers through the machine's own containerd and runc, from images built locally from pinned
// sources (package images) and imported instead of pulled.
//
// What a local cluster must do differently from real machines is in local.go, and only there.
//
// A TCP proxy on the spec's api_server address stands in for the API load balancer and forwards to
// the controllers whose apiserver answers /readyz. Faults act on the real thing: kill a container
// (SIGKILL through containerd), reboot (every process and container of the machine dies, its disk
// stays, its units start again), partition (its namespace drops every packet of its interface) and
// stop for good.
//
// Everything a machine runs lives in one cgroup tree of its own, which is how power-off kills it
// all; Close removes the machines' cgroups, namespaces, links and rules, restores the host's kernel
// settings and reports anything that survived.
package harness
