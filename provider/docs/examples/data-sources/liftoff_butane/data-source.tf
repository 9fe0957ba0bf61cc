# A machine outside the cluster, configured with the same strict translation liftoff uses.
data "liftoff_butane" "bastion" {
  content = <<-EOT
    variant: flatcar
    version: 1.1.0
    passwd:
      users:
        - name: core
          ssh_authorized_keys:
            - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILknphgl7KcgdRUw/emU2CzhYiKCj2wD1oYz3qkqs8vl admin@example.com
  EOT
  snippets = [
    <<-EOT
    variant: flatcar
    version: 1.1.0
    storage:
      files:
        - path: /etc/motd
          mode: 0644
          contents:
            inline: Bastion for the demo cluster.
    EOT
  ]
}

# The config is sensitive: it commonly carries keys and credentials.
output "bastion_ignition" {
  value     = data.liftoff_butane.bastion.rendered
  sensitive = true
}
