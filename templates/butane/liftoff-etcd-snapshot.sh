#!/bin/bash
# liftoff-etcd-snapshot CLUSTER KEEP
#
# Takes a snapshot of this controller's etcd member and keeps the newest KEEP. A snapshot is
# CLUSTER-MEMBER-YYYYMMDDTHHMMSSZ.db (UTC) in the snapshot directory, mode 0600 in a directory of
# mode 0700, with its digest beside it as NAME.db.sha256 in sha256sum's format (check it with
# `sha256sum --check NAME.db.sha256` in the directory). The digest appears first, then the
# snapshot, each whole or not at all. A failed snapshot deletes nothing. The member's name and
# client URL are those of its etcd configuration.
#
# The unit says where things are:
#   LIFTOFF_ETCD_CONFIG      the member's etcd configuration (name, advertise-client-urls)
#   LIFTOFF_ETCD_CA          the etcd CA's certificate
#   LIFTOFF_ETCD_CERT, _KEY  a client certificate and key the member accepts
#   LIFTOFF_SNAPSHOT_DIR     where snapshots are kept
#   LIFTOFF_ETCDCTL          the command that runs the installed etcd release's etcdctl
#   LIFTOFF_ETCDUTL          the command that runs its etcdutl, which checks each snapshot when present
# LIFTOFF_ROOT, when set, is a directory standing for / (for tests).
set -euo pipefail
export LC_ALL=C
[[ $# == 2 ]] || {
  echo "usage: liftoff-etcd-snapshot CLUSTER KEEP" >&2
  exit 2
}
cluster=$1 keep=$2
root=${LIFTOFF_ROOT:-}
config=$root${LIFTOFF_ETCD_CONFIG:?} dir=$root${LIFTOFF_SNAPSHOT_DIR:?}
ca=$root${LIFTOFF_ETCD_CA:?} cert=$root${LIFTOFF_ETCD_CERT:?} key=$root${LIFTOFF_ETCD_KEY:?}
read -ra etcdctl <<<"${LIFTOFF_ETCDCTL:?}"
read -ra etcdutl <<<"${LIFTOFF_ETCDUTL:?}"

fail() {
  echo "liftoff-etcd-snapshot: $*" >&2
  exit 1
}

[[ $keep =~ ^[1-9][0-9]*$ ]] || fail "KEEP is $keep, not a count of at least 1"

# setting prints a top-level setting of the etcd configuration, without YAML's quotes.
setting() {
  local value
  value=$(sed -n "s/^$1:[[:space:]]*//p" "$config" | head -n 1)
  value=${value%$'\r'}
  value=${value#[\"\']}
  value=${value%[\"\']}
  [[ -n $value ]] || fail "$config sets no $1"
  echo "$value"
}
member=$(setting name)
endpoint=$(setting advertise-client-urls)
endpoint=${endpoint%%,*}

# Snapshot names sort by time: the prefix is fixed and the timestamp has a fixed width.
prefix=$cluster-$member-
stamp='[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z'
name=$prefix$(date -u +%Y%m%dT%H%M%SZ).db

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
shopt -s nullglob
# What an interrupted run left: parts of a snapshot, digests whose snapshot never appeared.
rm -f "$dir/$prefix"$stamp.db.part* "$dir/$prefix"$stamp.db.sha256.part
for digest in "$dir/$prefix"$stamp.db.sha256; do
  [[ -e ${digest%.sha256} ]] || rm -f "$digest"
done

part=$dir/$name.part
# etcdctl itself writes PATH.part and renames it to PATH.
trap 'rm -f "$part" "$part.part" "$dir/$name.sha256.part"' EXIT
"${etcdctl[@]}" --endpoints="$endpoint" --cacert="$ca" --cert="$cert" --key="$key" snapshot save "$part" ||
  fail "etcdctl could not take a snapshot of member $member at $endpoint"
if "${etcdutl[@]}" snapshot status "$part" --write-out=table; then
  :
else
  status=$?
  # 127: the command, or etcdutl inside the image, does not exist.
  [[ $status == 127 ]] || fail "the snapshot of member $member is not a valid etcd snapshot (etcdutl snapshot status exited $status)"
  echo "liftoff-etcd-snapshot: etcdutl is not installed, so $name is not checked beyond etcdctl's own check" >&2
fi
chmod 0600 "$part"
sum=$(sha256sum <"$part")
echo "${sum%% *}  $name" >"$dir/$name.sha256.part"
mv -f "$dir/$name.sha256.part" "$dir/$name.sha256"
mv -f "$part" "$dir/$name"
echo "liftoff-etcd-snapshot: saved $dir/$name"

# Only now that the new snapshot is in place: delete all but the newest KEEP, with their digests.
snapshots=("$dir/$prefix"$stamp.db)
for ((i = 0; i < ${#snapshots[@]} - keep; i++)); do
  rm -f "${snapshots[i]}" "${snapshots[i]}.sha256"
  echo "liftoff-etcd-snapshot: removed ${snapshots[i]}"
done
