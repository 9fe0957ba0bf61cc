#!/bin/bash
# liftoff-remove-bootstrap-kubeconfig BOOTSTRAP KUBECONFIG CERT
#
# Waits until the kubelet has joined the cluster, that is until it has written KUBECONFIG and the
# client certificate CERT that it got with the bootstrap token, then removes BOOTSTRAP, the
# bootstrap kubeconfig that holds the token, so that the token no longer sits on a machine that
# does not need it. The kubelet renews its certificate with the certificate itself from then on.
# A kubelet whose certificate expired while its machine was off cannot join again without the
# token: replace the machine, or put the bootstrap kubeconfig back.
set -euo pipefail
bootstrap=$1 kubeconfig=$2 cert=$3
until [[ -s $kubeconfig && -s $cert ]]; do
  [[ -e $bootstrap ]] || exit 0
  sleep 5
done
rm -f "$bootstrap"
echo "liftoff-remove-bootstrap-kubeconfig: the kubelet has joined with $cert; removed $bootstrap"
