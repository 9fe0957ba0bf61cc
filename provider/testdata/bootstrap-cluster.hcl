# The smallest self-hosted cluster for the local harness: one controller, whose bootstrap control
# plane the pivot replaces, and one worker. Cut down from harness/testdata/cluster.hcl; the test
# moves it from 10.42.0.0/24 to a free /24 of its own.
cluster "bootstrap" {
  kubernetes_version = "v1.35.4"
  os                 = "flatcar"
  control_plane      = "self-hosted"
  api_server         = "https://10.42.0.10:6443"
  networking         = "flannel"

  controller "controller-1" {
    ip = "10.42.0.11"
  }
  worker "worker-1" {
    ip = "10.42.0.21"
  }
}
