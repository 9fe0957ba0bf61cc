# A bare-metal cluster booted over the network by matchbox.
#
#   liftoff render --spec cluster.hcl --out assets
#   matchbox -data-path assets/matchbox -assets-path /var/lib/matchbox/assets
#
# serves it as it is; main.tf writes the same groups and profiles through matchbox's gRPC API instead.
# Each machine PXE-boots once into the installer: set it to boot from disk after the install, or
# to network-boot only on request (ipmitool chassis bootdev pxe).
cluster "metal" {
  os                  = "flatcar"
  api_server          = "https://api.metal.example.com:6443"
  host_cidrs          = ["10.0.0.0/24"]
  ssh_authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com"]

  # matchbox serves each machine's config to anyone who knows its MAC, so the configs carry no
  # private key or credential: each machine fetches its own over HTTPS from `liftoff bootstrap`
  # (or `liftoff serve-secrets`), run on the host at this address.
  machine_secrets {
    server = "10.0.0.2:9443"
  }

  platform "matchbox" {
    matchbox_http_endpoint = "http://matchbox.example.com:8080"
    os_channel             = "stable"
    os_version             = "4230.2.3"
    install_disk           = "/dev/sda"
    kernel_args            = ["console=tty0", "console=ttyS0,115200n8"]
  }

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
  worker "node5" {
    ip           = "10.0.0.22"
    mac          = "52:54:00:e5:3b:04"
    domain       = "node5.example.com"
    install_disk = "/dev/nvme0n1"
  }
}
