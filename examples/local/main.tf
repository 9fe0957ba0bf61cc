# A small cluster rendered entirely on this machine: no network, no provider but liftoff. The
# machines' addresses are on loopback, so the configs are for trying liftoff out, not for booting.

terraform {
  required_providers {
    liftoff = {
      source = "liftoff-k8s/liftoff"
    }
  }
}

resource "liftoff_cluster" "local" {
  name       = "local"
  api_server = "https://127.0.0.11:6443"
  host_cidrs = ["127.0.0.0/8"]

  controllers = {
    controller1 = { ip = "127.0.0.11" }
  }
  workers = {
    worker1 = { ip = "127.0.0.21", labels = { "example.com/pool" = "a" } }
    worker2 = { ip = "127.0.0.22", labels = { "example.com/pool" = "b" } }
  }

  # Also write the render as `liftoff render --out` would.
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
