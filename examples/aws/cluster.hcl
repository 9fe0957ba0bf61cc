# A cluster on EC2: three controllers, one per availability zone, three workers, and a pool of workers
# in an autoscaling group.
#
#   liftoff render --spec cluster.hcl --out assets
#   terraform init && terraform apply
#
# Every machine's and pool's full Ignition config is uploaded to the bucket; its launch template's
# user data is a small pointer config that fetches it and checks its sha512.
cluster "aws-demo" {
  os                  = "flatcar"
  api_server          = "https://api.aws-demo.example.com:6443"
  host_cidrs          = ["10.0.0.0/16"]
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  platform "aws" {
    region                   = "eu-central-1"
    bucket                   = "aws-demo-liftoff-configs"
    controller_instance_type = "m6i.large"
    worker_instance_type     = "m6i.xlarge"
    # Pools not named here run worker_instance_type.
    worker_pool_instance_types = { general = "m6i.large" }
    # Flatcar links each NVMe EBS volume to the device name it was attached as. Once the volumes
    # exist (terraform apply -target=aws_ebs_volume.etcd), etcd_volume_ids = { node1 = "vol-..." }
    # finds them by ID instead.
    etcd_volume_device = "/dev/xvdf"
    etcd_volume_size   = 20
  }

  controller "node1" { ip = "10.0.1.10" }
  controller "node2" { ip = "10.0.2.10" }
  controller "node3" { ip = "10.0.3.10" }
  worker "node4" { ip = "10.0.1.20" }
  worker "node5" { ip = "10.0.2.20" }
  worker "node6" { ip = "10.0.3.20" }

  # An autoscaling group of 3 to 10 machines; each takes its node name and address at boot.
  worker_pool "general" {
    size     = 3
    max_size = 10
    labels   = { "liftoff.dev/pool" = "general" }
  }
}
