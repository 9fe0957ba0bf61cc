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

variable "bootstrap" {
  description = "Bootstrap the cluster once its machines are booted from out/ and its API answers at https://127.0.0.11:6443."
  type        = bool
  default     = false
}

# Applies the rendered manifests and waits for the control plane, as `liftoff bootstrap --dir out`
# does. The machines of this example do not exist, so it is off unless asked for.
resource "liftoff_bootstrap" "local" {
  count = var.bootstrap ? 1 : 0

  # Referring to output_dir makes bootstrap wait until the render is written.
  dir = liftoff_cluster.local.output_dir
  # A re-render that changes a manifest bootstraps again; the plan names the files.
  manifests = {
    for a in jsondecode(liftoff_cluster.local.asset_index).assets : a.path => a.sha256
    if startswith(a.path, "manifests/")
  }
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

output "bootstrap" {
  description = "The cluster's bootstrap stages, when bootstrapped."
  value       = [for b in liftoff_bootstrap.local : { for s in b.stages : s.stage => s.result }]
}
