cluster "demo" {
  kubernetes_version  = "v1.35.4"
  os                  = "flatcar"        # "flatcar" or "fcos"
  control_plane       = "static"         # "static" or "self-hosted"
  api_server          = "https://api.demo.example.com:6443"
  pod_cidr            = "10.2.0.0/16"
  service_cidr        = "10.3.0.0/16"
  cluster_domain      = "cluster.local"
  networking          = "flannel"
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  controller "node1" {
    ip     = "10.0.0.11"
    mac    = "52:54:00:a1:9c:ae"
    domain = "node1.example.com"
  }
  controller "node2" {
    ip     = "10.0.0.12"
    mac    = "52:54:00:b2:2f:86"
    domain = "node2.example.com"
  }
  controller "node3" {
    ip     = "10.0.0.13"
    mac    = "52:54:00:c3:61:77"
    domain = "node3.example.com"
  }
  worker "node4" {
    ip     = "10.0.0.21"
    mac    = "52:54:00:d4:11:9a"
    domain = "node4.example.com"
  }
}
