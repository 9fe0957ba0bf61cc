// Package templates holds liftoff's embedded text: Butane templates for machines and Kubernetes
// manifest templates. The generator fills them; nothing here runs.
package templates

import "embed"

// FS holds butane/ and manifests/.
//
//go:embed butane manifests
var FS embed.FS
