# Adopt a cluster already bootstrapped (by `liftoff bootstrap` or another state): the import ID is its
# output directory, written exactly as the configuration's `dir`. The cluster's record is read
# through DIR/auth/admin.conf; a cluster without one is refused.
terraform import liftoff_bootstrap.demo ./assets
