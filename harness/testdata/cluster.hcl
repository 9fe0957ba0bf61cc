# A cluster for the local harness: every machine is a network namespace on a bridge the harness
# creates for the /24 of api_server, whose address the harness's API load balancer takes. The tests
# move it to a free /24 of their own, so that runs on one host do not collide.
cluster "harness" {
  kubernetes_version = "v1.35.4"
  os                 = "flatcar"
  control_plane      = "static"
  api_server         = "https://10.42.0.10:6443"
  networking         = "flannel"

  controller "controller-1" {
    ip = "10.42.0.11"
  }
  controller "controller-2" {
    ip = "10.42.0.12"
  }
  controller "controller-3" {
    ip = "10.42.0.13"
  }
  worker "worker-1" {
    ip = "10.42.0.21"
  }
  worker "worker-2" {
    ip = "10.42.0.22"
  }
}
