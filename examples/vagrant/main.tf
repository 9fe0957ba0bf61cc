# The Fedora CoreOS cluster of cluster.hcl on local virtual machines, rendered by the liftoff
# provider alone. The apply writes the render to out/, with the Vagrantfile and each machine's
# Ignition config in out/vagrant/:
#
#   export VAGRANT_DOTFILE_PATH="$PWD/.vagrant"   # Vagrant's state outside out/, which apply replaces
#   terraform apply
#   cd out/vagrant && vagrant up --provider=libvirt
#
# Each machine's Ignition config gives its private interface the address below; the box must be a
# Fedora CoreOS box (for a Flatcar cluster, os = "flatcar" and a Flatcar box such as flatcar-stable).

terraform {
  required_providers {
    liftoff = {
      source = "liftoff-k8s/liftoff"
    }
  }
}

resource "liftoff_cluster" "local" {
  name                = "local"
  os                  = "fcos"
  api_server          = "https://192.168.56.11:6443"
  host_cidrs          = ["192.168.56.0/24"]
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  platform = {
    vagrant = {
      box               = "fedora-coreos-stable"
      controller_cpus   = 2
      controller_memory = 4096
      worker_cpus       = 2
      worker_memory     = 2048
    }
  }

  controllers = {
    node1 = { ip = "192.168.56.11" }
  }
  workers = {
    node2 = { ip = "192.168.56.21" }
    node3 = { ip = "192.168.56.22" }
  }

  # Write the render as `liftoff render --out` would; vagrant up runs in out/vagrant.
  output_dir = "${path.module}/out"
}

output "kubeconfig" {
  description = "A cluster-admin kubeconfig."
  value       = liftoff_cluster.local.admin_kubeconfig
  sensitive   = true
}

output "ignition" {
  description = "Each machine's Ignition config, by machine name."
  value       = liftoff_cluster.local.ignition
  sensitive   = true
}

output "ca_certificate" {
  description = "The cluster CA certificate."
  value       = liftoff_cluster.local.ca_certificate
}

output "certificates" {
  description = "Every certificate with its expiry."
  value       = { for c in liftoff_cluster.local.certificates : c.path => c.not_after }
}

output "vagrant_dir" {
  description = "Where to run `vagrant up --provider=libvirt`."
  value       = abspath("${path.module}/out/vagrant")
}
