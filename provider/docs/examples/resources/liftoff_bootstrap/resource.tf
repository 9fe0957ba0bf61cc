resource "liftoff_cluster" "demo" {
  name          = "demo"
  api_server    = "https://api.demo.example.com:6443"
  host_cidrs    = ["10.0.0.0/24"]
  control_plane = "self-hosted"
  output_dir    = "${path.module}/assets"

  controllers = {
    node1 = { ip = "10.0.0.11", mac = "52:54:00:a1:9c:ae", domain = "node1.example.com" }
  }
  workers = {
    worker1 = { ip = "10.0.0.21", mac = "52:54:00:d4:11:01" }
  }
}

# ... boot the machines with liftoff_cluster.demo.ignition ...

resource "liftoff_bootstrap" "demo" {
  # Referring to output_dir makes bootstrap wait until the render is written.
  dir = liftoff_cluster.demo.output_dir

  # Bootstrap again whenever a re-render changes a manifest; the plan names the files.
  manifests = {
    for a in jsondecode(liftoff_cluster.demo.asset_index).assets : a.path => a.sha256
    if startswith(a.path, "manifests/")
  }
  timeout = "30m"
}

output "bootstrap" {
  value = {
    status    = liftoff_bootstrap.demo.status
    completed = liftoff_bootstrap.demo.completed
    stages    = [for s in liftoff_bootstrap.demo.stages : "${s.stage}: ${s.result}"]
  }
}
