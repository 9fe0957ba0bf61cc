# Adopt a cluster rendered by the CLI: the import ID is the directory `liftoff render --out` wrote.
# Write the resource with the same settings as the spec; the next plan then changes no machine's config.
terraform import liftoff_cluster.demo ./assets
