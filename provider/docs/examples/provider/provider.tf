terraform {
  required_providers {
    liftoff = {
      source = "liftoff-k8s/liftoff"
    }
  }
}

# The provider has no settings.
provider "liftoff" {}
