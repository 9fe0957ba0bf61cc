package spec

import "github.com/hashicorp/hcl/v2"

// Platform selects where the cluster runs and holds that platform's settings. Its body is decoded by
// the platform's adapter; Kind is the block label (e.g. "matchbox", "aws", "vagrant").
type Platform struct {
	Kind string   `hcl:"kind,label"`
	Body hcl.Body `hcl:",remain"`
	// Settings holds the platform's settings when the spec is built in code (the Terraform provider).
	Settings map[string]any
}
