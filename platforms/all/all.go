// Package all imports every platform adapter, so that a program reading specs (the CLI, the
// Terraform provider) validates and renders every platform.
package all

import (
	_ "github.com/liftoff-k8s/liftoff/platforms/aws"
	_ "github.com/liftoff-k8s/liftoff/platforms/libvirt"
	_ "github.com/liftoff-k8s/liftoff/platforms/matchbox"
	_ "github.com/liftoff-k8s/liftoff/platforms/vagrant"
)
