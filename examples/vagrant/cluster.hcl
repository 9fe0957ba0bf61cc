# A Fedora CoreOS cluster on local virtual machines.
#
#   liftoff render --spec cluster.hcl --out assets
#   cd assets/vagrant && vagrant up --provider=libvirt
#
# Each machine's Ignition config gives its private interface the address below; the box must be a
# Fedora CoreOS box (for Flatcar clusters, a Flatcar box such as flatcar-stable).
cluster "local" {
  os                  = "fcos"
  api_server          = "https://192.168.56.11:6443"
  host_cidrs          = ["192.168.56.0/24"]
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  platform "vagrant" {
    box               = "fedora-coreos-stable"
    controller_cpus   = 2
    controller_memory = 4096
    worker_cpus       = 2
    worker_memory     = 2048
  }

  controller "node1" { ip = "192.168.56.11" }
  worker "node2" { ip = "192.168.56.21" }
  worker "node3" { ip = "192.168.56.22" }
}
