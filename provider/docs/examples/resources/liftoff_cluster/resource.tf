resource "liftoff_cluster" "demo" {
  name                = "demo"
  api_server          = "https://api.demo.example.com:6443"
  host_cidrs          = ["10.0.0.0/24"]
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  controllers = {
    node1 = { ip = "10.0.0.11", mac = "52:54:00:a1:9c:ae", domain = "node1.example.com" }
    node2 = { ip = "10.0.0.12", mac = "52:54:00:b2:2f:86", domain = "node2.example.com" }
    node3 = { ip = "10.0.0.13", mac = "52:54:00:c3:61:77", domain = "node3.example.com" }
  }

  worker_defaults = {
    labels = { "example.com/tier" = "general" }
  }
  workers = {
    for i in range(1, 4) : "worker${i}" => {
      ip  = "10.0.0.${20 + i}"
      mac = format("52:54:00:d4:11:%02x", i)
    }
  }
}

output "kubeconfig" {
  value     = liftoff_cluster.demo.admin_kubeconfig
  sensitive = true
}

# Hand each machine its Ignition config, for example as matchbox profiles or cloud user data.
output "ignition" {
  value     = liftoff_cluster.demo.ignition
  sensitive = true
}

output "expiring" {
  value = [for c in liftoff_cluster.demo.certificates : "${c.path} ${c.not_after}"]
}
