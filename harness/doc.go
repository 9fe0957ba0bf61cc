// Package harness runs a rendered liftoff cluster on this one host, with real components, for
// tests and demos. It is test infrastructure: no product package imports it.
//
// Each machine of the rendered cluster gets a root directory laid out by applying its rendered
// Ignition config with the real Ignition binary, and a loopback address (127.x.y.z) as its
// network identity. Everything the harness then runs is read from that root, never from the output
// directory: the enabled systemd units the harness knows (etcd.service, run as the real etcd with
// the unit's configuration file; kubelet.service, run as the kubelet stand-in of package kubelet,
// which runs static pods and API pods as real processes where it can). Programs come from
// internal/testbin (built from pinned versions) instead of the download units, which are not run.
//
// A TCP proxy on the spec's api_server address stands in for the API load balancer and forwards to
// the controllers whose apiserver answers /readyz. Faults can be injected per machine: kill a
// container, reboot (every process dies, the root stays, the machine boots again), partition from
// the API (its kubelet reaches no apiserver; its processes keep running) and stop for good.
//
// Every process runs in its own process group with a parent-death signal and carries a marker in
// its environment; Close kills them all and reports any that survived.
package harness
