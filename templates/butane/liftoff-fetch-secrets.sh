#!/bin/bash
# liftoff-fetch-secrets URL NAME CA MARKER: fetches this machine's private keys and credentials
# from liftoff (`liftoff bootstrap` or `liftoff serve-secrets`) over HTTPS, checking the server
# against the cluster CA, unpacks them in place with their owners and modes, and leaves MARKER so
# that later boots do not ask again. liftoff serves a machine only its own, and only to its address.
set -euo pipefail
url="$1/v1/secrets/$2" ca="$3" marker="$4"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
until curl --fail --silent --show-error --max-time 60 --cacert "$ca" --output "$tmp/secrets.tar" "$url"; do
  echo "liftoff-fetch-secrets: waiting for liftoff to serve this machine's secrets at $url" >&2
  sleep 5
done
tar --extract --preserve-permissions --same-owner --numeric-owner --directory / --file "$tmp/secrets.tar"
mkdir -p "$(dirname "$marker")"
touch "$marker"
echo "liftoff-fetch-secrets: $(tar --list --file "$tmp/secrets.tar" | wc -l) files in place"
