// Package provider is liftoff's Terraform provider: the resource liftoff_cluster, which renders a
// cluster from the same spec the CLI reads and keeps its key material in state, the resource
// liftoff_bootstrap, which bootstraps a booted cluster from its output directory, and the data
// source liftoff_butane, which translates a Butane config for machines outside the cluster.
//
// It is thin on purpose: it turns resource arguments into a spec.Cluster, validates it with
// spec.Complete (the CLI's own check, so both refuse the same things with the same words) and
// renders it with render.Cluster (the CLI's render pipeline), passing the key material of the
// previous apply as Options.Existing so nothing is regenerated. liftoff_bootstrap likewise runs bootstrap.Run, as
// `liftoff bootstrap` does, and reports the record it keeps in the cluster.
package provider
