// Package bootstrap brings a rendered cluster's control plane from "machines booted" to "cluster
// configured": it waits until the API answers, then applies the rendered manifests with server-side
// apply.
//
// The work is split into named stages (see Stage) that run in order. Every stage is idempotent, so a
// run can start again from any stage against a live cluster, and each stage reports what it did,
// object by object, as Events. Later stages of the control-plane pivot are added to the same list.
package bootstrap
