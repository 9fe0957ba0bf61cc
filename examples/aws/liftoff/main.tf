# Reads what `liftoff render` wrote for the AWS platform (aws/cluster.json and the files it names)
# and hands it to the configuration that creates the machines and the worker pools' autoscaling
# groups. It needs no provider.

variable "assets_dir" {
  type        = string
  description = "Output directory of `liftoff render`."
}

locals {
  manifest = jsondecode(file("${var.assets_dir}/aws/cluster.json"))
  machines = merge(local.manifest.controllers, local.manifest.workers)
}

output "cluster" {
  description = "The cluster's name."
  value       = local.manifest.cluster
}

output "region" {
  description = "The AWS region of the platform block."
  value       = local.manifest.region
}

output "bucket" {
  description = "The bucket that holds the full Ignition configs."
  value       = local.manifest.bucket
}

output "ami" {
  description = "The AMI of the platform block, or null to look one up."
  value       = try(local.manifest.ami, null)
}

output "controllers" {
  description = "Each controller's address, instance type and etcd volume."
  value = {
    for name, m in local.manifest.controllers : name => {
      ip            = m.ip
      instance_type = m.instance_type
      etcd_volume   = m.etcd_volume
    }
  }
}

output "workers" {
  description = "Each worker's address and instance type."
  value = {
    for name, m in local.manifest.workers : name => {
      ip            = m.ip
      instance_type = m.instance_type
    }
  }
}

output "user_data" {
  description = "Each machine's launch-template user data (base64): a pointer to its object."
  value = {
    for name, m in local.machines : name => filebase64("${var.assets_dir}/${m.user_data}")
  }
}

output "objects" {
  description = "Each machine's full Ignition config: its key in the bucket, its file and its sha512."
  value = {
    for name, m in local.machines : name => {
      key    = m.object_key
      source = "${var.assets_dir}/${m.object}"
      sha512 = filesha512("${var.assets_dir}/${m.object}")
    }
  }
}

output "fingerprints" {
  description = "Each machine's config fingerprint: when it changes, the machine is replaced."
  value = {
    for name, m in local.machines : name => m.config_sha512
  }
}

output "pools" {
  description = "Each worker pool's autoscaling group: instance type, sizes, launch-template user data (base64), config fingerprint and full Ignition config object."
  value = {
    for name, p in local.manifest.worker_pools : name => {
      instance_type    = p.instance_type
      min_size         = p.min_size
      desired_capacity = p.desired_capacity
      max_size         = p.max_size
      user_data        = filebase64("${var.assets_dir}/${p.user_data}")
      fingerprint      = p.config_sha512
      object = {
        key    = p.object_key
        source = "${var.assets_dir}/${p.object}"
        sha512 = filesha512("${var.assets_dir}/${p.object}")
      }
    }
  }
}

output "booted_tag" {
  description = "The tag with which a machine marks its object once it has booted from it: the roles read an object only from an instance other than the one the tag names."
  value       = local.manifest.booted_tag
}
