#!/bin/bash
# liftoff-node-identity writes the Kubernetes identity of a worker-pool machine, which the spec does
# not name one by one: its hostname becomes the node name and the source address of its default
# route the node address. The kubelet reads them from /run/liftoff/node.env.
set -euo pipefail
address=$(ip -4 -o route get 192.0.2.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
name=$(hostname | tr '[:upper:]' '[:lower:]')
if [[ -z $address || -z $name || $name == localhost ]]; then
  echo "liftoff-node-identity: cannot tell this machine's address ($address) or name ($name)" >&2
  exit 1
fi
mkdir -p /run/liftoff
printf 'NODE_NAME=%s\nNODE_IP=%s\n' "$name" "$address" >/run/liftoff/node.env.tmp
mv /run/liftoff/node.env.tmp /run/liftoff/node.env
