# The demo cluster for this machine: `make demo` renders it and boots it locally with the liftoff
# harness (real Ignition, kubelet, containerd, etcd and control plane). Every machine is a network
# namespace on a bridge the harness creates for the /24 of api_server, whose address is the harness's
# stand-in for the API load balancer.
# examples/demo/cluster.hcl is the same cluster for real machines.
cluster "local" {
  kubernetes_version = "v1.35.4"
  os                 = "flatcar"
  control_plane      = "static"
  api_server         = "https://10.43.0.10:6443"
  pod_cidr           = "10.2.0.0/16"
  service_cidr       = "10.3.0.0/16"
  cluster_domain     = "cluster.local"
  networking         = "flannel"

  controller "node1" {
    ip = "10.43.0.11"
  }
  controller "node2" {
    ip = "10.43.0.12"
  }
  controller "node3" {
    ip = "10.43.0.13"
  }
  worker "node4" {
    ip = "10.43.0.21"
  }
  worker "node5" {
    ip = "10.43.0.22"
  }
}
