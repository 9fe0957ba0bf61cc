# The EC2 side of examples/aws/cluster.hcl: network, API load balancer, the bucket with every
# machine's and worker pool's full Ignition config, a role per machine and pool that reads its own
# config only, launch templates whose user data points at those configs, the machines, the pools'
# autoscaling groups, and the controllers' etcd volumes.
#
#   liftoff render --spec cluster.hcl --out assets
#   terraform init && terraform apply
#
# Machines are EC2 instances with the private addresses of the spec: liftoff renders each machine's
# config for its own address and name, and an autoscaling group cannot give an instance a chosen
# address. A changed config changes its machine's user data and launch template, which replaces the
# machine (one at a time with `terraform apply -target`, for controllers).
#
# A worker pool's machines find their name and address at boot, so a pool is an autoscaling group.
# A changed pool config changes its launch template, and the group replaces its machines a few at a
# time (an instance refresh).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "assets_dir" {
  type        = string
  description = "Output directory of `liftoff render` for cluster.hcl."
  default     = "assets"
}

variable "availability_zones" {
  type        = list(string)
  description = "Zones of the host subnets: subnet 10.0.N.0/24 is in zone N modulo their number."
  default     = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
}

variable "vpc_cidr" {
  type        = string
  description = "The VPC; it must hold the spec's host_cidrs."
  default     = "10.0.0.0/16"
}

variable "pool_subnet_base" {
  type        = number
  description = "Worker pools' machines take addresses in subnets N.0/24 of the VPC from this N on, one per zone; no machine of the spec may be in them."
  default     = 100
}

variable "ssh_cidrs" {
  type        = list(string)
  description = "Addresses allowed to reach the machines over SSH."
  default     = []
}

variable "api_cidrs" {
  type        = list(string)
  description = "Addresses allowed to reach the Kubernetes API through the load balancer."
  default     = ["0.0.0.0/0"]
}

module "liftoff" {
  source     = "./liftoff"
  assets_dir = var.assets_dir
}

provider "aws" {
  region = module.liftoff.region
  default_tags {
    tags = {
      "liftoff.dev/cluster" = module.liftoff.cluster
    }
  }
  # Machines tag their own objects once booted (see "Who can read what"); Terraform leaves that tag be.
  ignore_tags {
    keys = [module.liftoff.booted_tag]
  }
}

locals {
  cluster  = module.liftoff.cluster
  machines = merge(module.liftoff.controllers, module.liftoff.workers)
  # Machines are placed in the /24 of their address: 10.0.N.x lives in subnet N.
  subnet_of = { for name, m in local.machines : name => split(".", m.ip)[2] }
  subnets   = toset(values(local.subnet_of))
  ami       = coalesce(module.liftoff.ami, data.aws_ami.flatcar.id)
  pools     = module.liftoff.pools
  # Pools get subnets of their own, so that EC2 never gives a pool machine an address of the spec.
  pool_subnets = length(local.pools) == 0 ? {} : {
    for i, zone in var.availability_zones : zone => var.pool_subnet_base + i
  }
  # The objects' ARNs, from names alone, so that the roles' policies are known when planned.
  bucket_arn       = "arn:${data.aws_partition.current.partition}:s3:::${module.liftoff.bucket}"
  object_arns      = { for name, o in module.liftoff.objects : name => "${local.bucket_arn}/${o.key}" }
  pool_object_arns = { for name, p in local.pools : name => "${local.bucket_arn}/${p.object.key}" }
  booted_tag       = module.liftoff.booted_tag
}

data "aws_ami" "flatcar" {
  most_recent = true
  owners      = ["075585003325"] # Flatcar's publisher account

  filter {
    name   = "name"
    values = ["Flatcar-stable-*"]
  }
  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

# Network.

resource "aws_vpc" "cluster" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = local.cluster }
}

resource "aws_internet_gateway" "cluster" {
  vpc_id = aws_vpc.cluster.id
  tags   = { Name = local.cluster }
}

resource "aws_route_table" "cluster" {
  vpc_id = aws_vpc.cluster.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.cluster.id
  }
  tags = { Name = local.cluster }
}

resource "aws_subnet" "hosts" {
  for_each = local.subnets

  vpc_id                  = aws_vpc.cluster.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, tonumber(each.key))
  availability_zone       = var.availability_zones[tonumber(each.key) % length(var.availability_zones)]
  map_public_ip_on_launch = true
  tags                    = { Name = "${local.cluster}-${each.key}" }
}

resource "aws_route_table_association" "hosts" {
  for_each = aws_subnet.hosts

  subnet_id      = each.value.id
  route_table_id = aws_route_table.cluster.id
}

resource "aws_subnet" "pools" {
  for_each = local.pool_subnets

  vpc_id                  = aws_vpc.cluster.id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, each.value)
  availability_zone       = each.key
  map_public_ip_on_launch = true
  tags                    = { Name = "${local.cluster}-pools-${each.key}" }

  lifecycle {
    precondition {
      condition     = !contains(local.subnets, tostring(each.value))
      error_message = "Subnet ${each.value} holds machines of the spec; set pool_subnet_base so that pool subnets hold none."
    }
  }
}

resource "aws_route_table_association" "pools" {
  for_each = aws_subnet.pools

  subnet_id      = each.value.id
  route_table_id = aws_route_table.cluster.id
}

resource "aws_security_group" "cluster" {
  name        = local.cluster
  description = "Machines of ${local.cluster}"
  vpc_id      = aws_vpc.cluster.id
}

resource "aws_vpc_security_group_ingress_rule" "internal" {
  security_group_id = aws_security_group.cluster.id
  description       = "Everything between the cluster's machines (etcd, kubelet, flannel)"
  ip_protocol       = "-1"
  cidr_ipv4         = var.vpc_cidr
}

resource "aws_vpc_security_group_ingress_rule" "api" {
  for_each = toset(var.api_cidrs)

  security_group_id = aws_security_group.cluster.id
  description       = "Kubernetes API"
  ip_protocol       = "tcp"
  from_port         = 6443
  to_port           = 6443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.cluster.id
  description       = "SSH"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.cluster.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

# The Kubernetes API: point the spec's api_server name at the load balancer.

resource "aws_lb" "api" {
  name               = "${local.cluster}-api"
  load_balancer_type = "network"
  internal           = false
  subnets            = [for s in aws_subnet.hosts : s.id]
}

resource "aws_lb_target_group" "api" {
  name        = "${local.cluster}-api"
  port        = 6443
  protocol    = "TCP"
  target_type = "ip"
  vpc_id      = aws_vpc.cluster.id

  health_check {
    protocol = "HTTPS"
    port     = 6443
    path     = "/readyz"
  }
}

resource "aws_lb_listener" "api" {
  load_balancer_arn = aws_lb.api.arn
  port              = 6443
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_lb_target_group_attachment" "api" {
  for_each = module.liftoff.controllers

  target_group_arn = aws_lb_target_group.api.arn
  target_id        = each.value.ip
  port             = 6443
}

# Full Ignition configs: they hold the cluster's keys, so the bucket is private and encrypted, and
# each machine may read its own config only (see "Who can read what" below).

resource "aws_s3_bucket" "configs" {
  bucket = module.liftoff.bucket
}

resource "aws_s3_bucket_public_access_block" "configs" {
  bucket                  = aws_s3_bucket.configs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "configs" {
  bucket = aws_s3_bucket.configs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_object" "ignition" {
  for_each = module.liftoff.objects

  bucket       = aws_s3_bucket.configs.id
  key          = each.value.key
  source       = each.value.source
  source_hash  = each.value.sha512
  content_type = "application/json"
}

resource "aws_s3_object" "pool" {
  for_each = local.pools

  bucket       = aws_s3_bucket.configs.id
  key          = each.value.object.key
  source       = each.value.object.source
  source_hash  = each.value.object.sha512
  content_type = "application/json"
}

# Who can read what. Every machine of the spec and every pool has a role of its own, which may read
# its own object and nothing else in the bucket, not even the list of keys: a worker cannot read a
# controller's keys, nor one pool another's.
#
# A machine of the spec reads its object once, when Ignition fetches it at first boot. Then
# liftoff-seal-config, a unit of its config, tags the object with the instance's ARN
# (module.liftoff.booted_tag), and the role reads the object only from an instance whose ARN is not
# the tag's: the booted instance's credentials, should they leak, no longer read its keys, while a
# replacement instance has an ARN of its own, reads the object, boots, and seals it in its turn.
# A changed config is uploaded anew, without the tag. A pool's machines come and go with their
# group, so a pool's role keeps reading the pool's object, which holds no controller's keys.

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "machine" {
  for_each = local.machines

  statement {
    sid       = "ReadOwnConfigUntilBooted"
    actions   = ["s3:GetObject"]
    resources = [local.object_arns[each.key]]
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:ExistingObjectTag/${local.booted_tag}"
      values   = ["$${ec2:SourceInstanceARN}"]
    }
  }
  statement {
    sid       = "ReadOwnConfigTags"
    actions   = ["s3:GetObjectTagging"]
    resources = [local.object_arns[each.key]]
  }
  # Every tagging this role does marks the object as booted by the instance asking: it can seal the
  # object, never unseal it nor seal it for another instance.
  statement {
    sid       = "SealOwnConfig"
    actions   = ["s3:PutObjectTagging"]
    resources = [local.object_arns[each.key]]
    condition {
      test     = "StringEquals"
      variable = "s3:RequestObjectTag/${local.booted_tag}"
      values   = ["$${ec2:SourceInstanceARN}"]
    }
  }
}

resource "aws_iam_role" "machine" {
  for_each = local.machines

  name               = "${local.cluster}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "machine" {
  for_each = local.machines

  name   = "read-own-ignition-config"
  role   = aws_iam_role.machine[each.key].name
  policy = data.aws_iam_policy_document.machine[each.key].json
}

resource "aws_iam_instance_profile" "machine" {
  for_each = local.machines

  name = "${local.cluster}-${each.key}"
  role = aws_iam_role.machine[each.key].name
}

data "aws_iam_policy_document" "pool" {
  for_each = local.pools

  statement {
    sid       = "ReadOwnPoolConfig"
    actions   = ["s3:GetObject"]
    resources = [local.pool_object_arns[each.key]]
  }
}

resource "aws_iam_role" "pool" {
  for_each = local.pools

  name               = "${local.cluster}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "pool" {
  for_each = local.pools

  name   = "read-own-ignition-config"
  role   = aws_iam_role.pool[each.key].name
  policy = data.aws_iam_policy_document.pool[each.key].json
}

resource "aws_iam_instance_profile" "pool" {
  for_each = local.pools

  name = "${local.cluster}-${each.key}"
  role = aws_iam_role.pool[each.key].name
}

# Machines.

resource "aws_launch_template" "machine" {
  for_each = local.machines

  name          = "${local.cluster}-${each.key}"
  image_id      = local.ami
  instance_type = each.value.instance_type
  user_data     = module.liftoff.user_data[each.key]

  iam_instance_profile {
    name = aws_iam_instance_profile.machine[each.key].name
  }
  vpc_security_group_ids = [aws_security_group.cluster.id]

  # IMDSv2 only, and its answers die after one hop: a container behind the node's bridge cannot
  # take the node's role. Pods on the host's network still reach it.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 40
      volume_type = "gp3"
      encrypted   = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name                        = "${local.cluster}-${each.key}"
      "liftoff.dev/config-sha512" = module.liftoff.fingerprints[each.key]
    }
  }
  tags = {
    "liftoff.dev/config-sha512" = module.liftoff.fingerprints[each.key]
  }
}

resource "aws_instance" "machine" {
  for_each = local.machines

  subnet_id  = aws_subnet.hosts[local.subnet_of[each.key]].id
  private_ip = each.value.ip

  launch_template {
    id      = aws_launch_template.machine[each.key].id
    version = aws_launch_template.machine[each.key].latest_version
  }

  # The machine reads its config from the bucket at first boot.
  depends_on = [aws_s3_object.ignition, aws_iam_role_policy.machine]

  lifecycle {
    replace_triggered_by = [aws_launch_template.machine[each.key].latest_version]
  }
}

# Worker pools. Pool and machine names are distinct, so the templates' names are too.

resource "aws_launch_template" "pool" {
  for_each = local.pools

  name          = "${local.cluster}-${each.key}"
  image_id      = local.ami
  instance_type = each.value.instance_type
  user_data     = each.value.user_data

  iam_instance_profile {
    name = aws_iam_instance_profile.pool[each.key].name
  }
  vpc_security_group_ids = [aws_security_group.cluster.id]

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 40
      volume_type = "gp3"
      encrypted   = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name                        = "${local.cluster}-${each.key}"
      "liftoff.dev/pool"          = each.key
      "liftoff.dev/config-sha512" = each.value.fingerprint
    }
  }
  tags = {
    "liftoff.dev/config-sha512" = each.value.fingerprint
  }
}

resource "aws_autoscaling_group" "pool" {
  for_each = local.pools

  name                = "${local.cluster}-${each.key}"
  min_size            = each.value.min_size
  desired_capacity    = each.value.desired_capacity
  max_size            = each.value.max_size
  vpc_zone_identifier = [for s in aws_subnet.pools : s.id]

  launch_template {
    id      = aws_launch_template.pool[each.key].id
    version = aws_launch_template.pool[each.key].latest_version
  }

  # A changed config is a new launch template version, which starts a refresh: the group replaces
  # its machines a few at a time, keeping most of them in service.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 90
    }
  }

  tag {
    key                 = "liftoff.dev/config-sha512"
    value               = each.value.fingerprint
    propagate_at_launch = false
  }

  # The machines read the pool's config from the bucket at first boot.
  depends_on = [aws_s3_object.pool, aws_iam_role_policy.pool, aws_route_table_association.pools]

  lifecycle {
    # Between min_size and max_size the group's size is a cluster autoscaler's to change; raising
    # the pool's size raises min_size, and with it the group.
    ignore_changes = [desired_capacity]
  }
}

# etcd's data outlives the controllers' instances.

resource "aws_ebs_volume" "etcd" {
  for_each = module.liftoff.controllers

  availability_zone = aws_subnet.hosts[local.subnet_of[each.key]].availability_zone
  size              = each.value.etcd_volume.size
  type              = "gp3"
  encrypted         = true
  tags              = { Name = "${local.cluster}-${each.key}-etcd" }

  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_volume_attachment" "etcd" {
  for_each = module.liftoff.controllers

  # The name EC2 attaches the volume as; the spec finds it by ID or by this name.
  device_name = startswith(each.value.etcd_volume.device, "/dev/disk/") ? "/dev/xvdf" : each.value.etcd_volume.device
  volume_id   = aws_ebs_volume.etcd[each.key].id
  instance_id = aws_instance.machine[each.key].id
}

output "api_load_balancer" {
  description = "DNS name of the API load balancer: point the spec's api_server host at it."
  value       = aws_lb.api.dns_name
}

output "etcd_volume_ids" {
  description = "The controllers' etcd volumes, for etcd_volume_ids in the spec."
  value       = { for name, v in aws_ebs_volume.etcd : name => v.id }
}
