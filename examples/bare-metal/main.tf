# Writes the bare-metal cluster's matchbox groups, profiles and Ignition configs through matchbox's
# gRPC API, the same ones `liftoff render` puts in its matchbox/ data directory.
#
#   liftoff render --spec cluster.hcl --out assets
#   terraform apply -var matchbox_rpc_endpoint=matchbox.example.com:8081 ...

terraform {
  required_version = ">= 1.5"
  required_providers {
    matchbox = {
      source  = "poseidon/matchbox"
      version = "0.5.4"
    }
  }
}

variable "assets_dir" {
  type        = string
  description = "Output directory of `liftoff render` for cluster.hcl."
  default     = "assets"
}

variable "matchbox_rpc_endpoint" {
  type        = string
  description = "matchbox's gRPC API, like matchbox.example.com:8081."
}

variable "matchbox_ca" {
  type        = string
  description = "Path of the CA certificate that signed matchbox's gRPC server certificate."
}

variable "matchbox_client_cert" {
  type        = string
  description = "Path of the client certificate matchbox's gRPC API accepts."
}

variable "matchbox_client_key" {
  type        = string
  description = "Path of the client certificate's key."
}

provider "matchbox" {
  endpoint    = var.matchbox_rpc_endpoint
  ca          = file(var.matchbox_ca)
  client_cert = file(var.matchbox_client_cert)
  client_key  = file(var.matchbox_client_key)
}

locals {
  data_dir = "${var.assets_dir}/matchbox"
  profiles = {
    for f in fileset(local.data_dir, "profiles/*.json") :
    trimsuffix(basename(f), ".json") => jsondecode(file("${local.data_dir}/${f}"))
  }
  groups = {
    for f in fileset(local.data_dir, "groups/*.json") :
    trimsuffix(basename(f), ".json") => jsondecode(file("${local.data_dir}/${f}"))
  }
}

# The provider stores a profile under its name and its Ignition config as NAME.ign, so naming each
# profile by liftoff's id gives matchbox the same store as the rendered data directory.
resource "matchbox_profile" "machine" {
  for_each = local.profiles

  name   = each.key
  kernel = try(each.value.boot.kernel, null)
  initrd = try(each.value.boot.initrd, null)
  args   = try(each.value.boot.args, null)
  raw_ignition = (
    try(each.value.ignition_id, "") == "" ? null :
    sensitive(file("${local.data_dir}/ignition/${each.value.ignition_id}"))
  )
}

resource "matchbox_group" "machine" {
  for_each = local.groups

  name     = each.key
  profile  = matchbox_profile.machine[each.value.profile].name
  selector = each.value.selector
  metadata = each.value.metadata
}

output "machines" {
  description = "Each machine's groups, by MAC address."
  value = {
    for id, g in local.groups : id => g.selector
  }
}
