#!/bin/bash
# liftoff-etcd-restore CLUSTER INITIAL-CLUSTER REVISION-BUMP
#
# Restores this controller's etcd member from a snapshot before etcd first starts, as `liftoff etcd
# restore` does: the snapshot is downloaded over HTTPS and restored only when it matches its
# SHA-256, into the member's data directory, for the member its etcd configuration names, with its
# peer URL, INITIAL-CLUSTER (the controllers' members) and CLUSTER as the token. Revisions move on
# by REVISION-BUMP and older ones count as compacted. The members restored from one snapshot form a
# new cluster holding its data. The download is removed whatever happens; nothing is restored
# unless the whole restore succeeds.
#
# Nothing is restored into a data directory that holds a member, nor for a member that the running
# members list as started, added (a replacement, which gets their data when it joins) or not at all
# (liftoff-etcd-join --standing): etcd then starts as liftoff-etcd-join decides. A member they list
# as initial and never started is one of the cluster restored from the snapshot, starting late: it
# restores the snapshot as they did.
#
# The unit says where things are:
#   LIFTOFF_ETCD_CONFIG      the member's rendered etcd configuration
#   LIFTOFF_ETCD_DATA_DIR    its data directory
#   LIFTOFF_ETCD_JOIN        liftoff-etcd-join, which says how the running members list it
#   LIFTOFF_ETCDUTL          the command that runs the installed etcd release's etcdutl
#   LIFTOFF_SNAPSHOT_URL     the snapshot's https URL
#   LIFTOFF_SNAPSHOT_SHA256  the snapshot's SHA-256 (hex)
# LIFTOFF_ROOT, when set, is a directory standing for / (for tests).
set -euo pipefail
export LC_ALL=C
[[ $# == 3 ]] || {
  echo "usage: liftoff-etcd-restore CLUSTER INITIAL-CLUSTER REVISION-BUMP" >&2
  exit 2
}
cluster=$1 initial=$2 bump=$3
root=${LIFTOFF_ROOT:-}
config=$root${LIFTOFF_ETCD_CONFIG:?} data=$root${LIFTOFF_ETCD_DATA_DIR:?} join=$root${LIFTOFF_ETCD_JOIN:?}
url=${LIFTOFF_SNAPSHOT_URL:?} want=${LIFTOFF_SNAPSHOT_SHA256:?}
read -ra etcdutl <<<"${LIFTOFF_ETCDUTL:?}"
# The snapshot's place without a query, which may hold credentials (a pre-signed URL).
shown=${url%%\?*}

fail() {
  echo "liftoff-etcd-restore: $*" >&2
  exit 1
}

[[ $want =~ ^[0-9a-f]{64}$ ]] || fail "LIFTOFF_SNAPSHOT_SHA256 is $want, not 64 hex digits"

umask 077
mkdir -p "$data"
shopt -s nullglob dotglob
# What an interrupted run left.
rm -rf "$data"/.liftoff-restore-*
if [[ -e $data/member ]]; then
  echo "liftoff-etcd-restore: $data holds etcd data, which is kept: nothing restored"
  exit 0
fi
found=()
for entry in "$data"/*; do
  [[ ${entry##*/} == lost+found ]] || found+=("${entry##*/}")
done
[[ ${#found[@]} == 0 ]] || fail "data directory $data is not empty (it holds ${found[*]}): liftoff restores only into an empty one; move its contents aside first"
shopt -u dotglob

answer=$("$join" --standing "$config") || fail "liftoff-etcd-join could not say how the running members list this member"
read -r standing member peer <<<"$answer"
case $standing in
none | initial) ;;
*)
  echo "liftoff-etcd-restore: the running etcd members list member $member as $standing, so it does not restore the snapshot but starts as liftoff-etcd-join decides"
  exit 0
  ;;
esac

# etcd keeps all its data under member/: restoring into a directory inside the data directory and
# moving member/ up is atomic, and works where the data directory is a mount point (a volume).
work=$(mktemp -d "$data/.liftoff-restore-XXXXXX")
trap 'rm -rf "$work"' EXIT
curl --fail --location --silent --show-error --retry 10 --retry-delay 3 --retry-all-errors \
  --proto '=https' --tlsv1.2 --output "$work/snapshot.db" "$url" ||
  fail "could not download the snapshot from $shown: nothing restored"
echo "$want  $work/snapshot.db" | sha256sum --check --quiet --status ||
  fail "the snapshot from $shown does not match its sha256 $want: nothing restored"
"${etcdutl[@]}" snapshot restore "$work/snapshot.db" --data-dir "$work/data" \
  --name "$member" --initial-advertise-peer-urls "$peer" --initial-cluster "$initial" \
  --initial-cluster-token "$cluster" --bump-revision "$bump" --mark-compacted ||
  fail "etcdutl could not restore the snapshot from $shown for etcd member $member: nothing restored"
mv "$work/data/member" "$data/member"
sync "$data"
echo "liftoff-etcd-restore: restored etcd member $member of $initial from $shown (sha256 $want)"
