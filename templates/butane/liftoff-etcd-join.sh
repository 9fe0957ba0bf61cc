#!/bin/bash
# liftoff-etcd-join RENDERED START [OWNER]
# liftoff-etcd-join --standing RENDERED
#
# Writes START, the configuration etcd starts with, from RENDERED, the member's rendered
# configuration. etcd reads nothing but its configuration file, so whether this member forms a new
# cluster or joins a running one is decided here, before every start:
#
#   - A member with data (a write-ahead log in its data directory) restarts from it, and etcd
#     ignores the initial-cluster settings: START is RENDERED as it is.
#   - A member without data that the running members list as added but never started (what
#     `liftoff etcd replace` leaves for the replacement of a lost member) joins them: START says
#     initial-cluster-state existing, with initial-cluster the running cluster's members.
#   - A member without data that the running members list as started has lost its data and cannot
#     rejoin as that member: this fails, saying to replace it.
#   - Otherwise (a new cluster forming, or no member answering) START is RENDERED as it is.
#
# The other members of the rendered initial cluster are asked at their client port, with this
# member's peer certificate, for their linearizable member list; a member without quorum gives
# none. A member that finds no answer waits at most 5 seconds.
#
# With OWNER (user:group), etcd runs as that user: the data directory and everything in it become
# OWNER's, mode 0700 (a snapshot restored as root, a volume mounted blank), and START is OWNER's,
# 0600. RENDERED stays root's.
#
# With --standing it writes nothing and prints how the running members list this member, whatever
# its data directory holds, then its name and peer URL: "STANDING NAME PEER-URL", where STANDING is
# none (no member answers), unlisted, initial (named by the initial cluster, never started), added
# (added, never started) or started. liftoff-etcd-restore restores a snapshot only for none or
# initial.
set -euo pipefail
standing=
if [[ ${1:-} == --standing ]]; then
  standing=1
  shift
fi
rendered=$1 start=${2:-} owner=${3:-}

fail() {
  echo "liftoff-etcd-join: $*" >&2
  exit 1
}

# setting KEY [SECTION]: a scalar of the rendered YAML, at the top level or in SECTION.
setting() {
  awk -v key="$1:" -v section="${2:-}:" '
    /^[^ ]/ { inside = ($1 == section) }
    (section == ":" && /^[^ ]/ || inside && /^  [^ ]/) && $1 == key {
      sub(/^ *[^ ]+ */, ""); gsub(/^["\047]|["\047]$/, ""); print; exit
    }' "$rendered"
}

name=$(setting name)
data=$(setting data-dir)
peer=$(setting initial-advertise-peer-urls)
cluster=$(setting initial-cluster)
client=$(setting advertise-client-urls)
ca=$(setting trusted-ca-file peer-transport-security)
cert=$(setting cert-file peer-transport-security)
key=$(setting key-file peer-transport-security)
[[ -n $name && -n $data && -n $peer && -n $cluster && -n $client ]] || fail "$rendered lacks name, data-dir, initial-advertise-peer-urls, initial-cluster or advertise-client-urls"

write() {
  local tmp
  tmp=$(mktemp "$start.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  "$@" >"$tmp"
  [[ -z $owner ]] || chown "$owner" "$tmp"
  mv -f "$tmp" "$start"
  trap - EXIT
}

if [[ -z $standing && -n $owner ]]; then
  mkdir -p "$data"
  chown -R "$owner" "$data"
  chmod 0700 "$data"
fi

if [[ -z $standing ]] && compgen -G "$data/member/wal/*.wal" >/dev/null; then
  write cat "$rendered"
  exit 0
fi

# Ask every other member of the rendered initial cluster at once; the first full answer counts.
answers=$(mktemp -d)
trap 'rm -rf "$answers"' EXIT
i=0
for entry in ${cluster//,/ }; do
  url=${entry#*=}
  [[ $url == "$peer" ]] && continue
  i=$((i + 1))
  curl --silent --fail --connect-timeout 2 --max-time 5 --proto '=https' \
    --cacert "$ca" --cert "$cert" --key "$key" --request POST --data '{"linearizable":true}' \
    --output "$answers/$i" "${url%:*}:${client##*:}/v3/cluster/member/list" || rm -f "$answers/$i" &
done
wait
list=
for f in "$answers"/*; do
  [[ -s $f ]] && grep -q '"members":' "$f" && list=$(<"$f") && break
done
rm -rf "$answers"
trap - EXIT

mine=none
if [[ -n $list ]]; then
  # Members are flat JSON objects: {"ID":"..","name":"..","peerURLs":[..],"clientURLs":[..]},
  # the name and client URLs missing until the member first starts.
  members=() mine=unlisted
  while IFS= read -r m; do
    mid=$(sed -n 's/.*"ID":"\([0-9]*\)".*/\1/p' <<<"$m")
    mname=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' <<<"$m")
    urls=$(grep -o '"peerURLs":\[[^]]*\]' <<<"$m" | grep -o 'https\?://[^"]*' || true)
    if grep -qxF "$peer" <<<"$urls"; then
      if grep -q '"clientURLs":\[' <<<"$m"; then
        mine=started
      elif [[ -z $mname ]]; then
        mine=added
      else
        mine=initial # named by the initial cluster, not started yet: it starts as rendered
      fi
      mname=$name
    fi
    for u in $urls; do
      members+=("${mname:-unstarted-$mid}=$u")
    done
  done < <(grep -o '{"ID":[^{}]*}' <<<"$list")
fi
if [[ -n $standing ]]; then
  echo "$mine $name $peer"
  exit 0
fi

join=
case $mine in
unlisted)
  echo "liftoff-etcd-join: the running members do not list etcd member $name ($peer): they will not let it in until it is added (liftoff etcd replace --dir OUT $name)" >&2
  ;;
started)
  fail "etcd member $name has no data in $data, but the running members list it as started: it lost its data and cannot rejoin as that member. Replace it: liftoff etcd replace --dir OUT $name"
  ;;
added)
  join=$(
    IFS=,
    echo "${members[*]}"
  )
  ;;
esac

if [[ -z $join ]]; then
  write cat "$rendered"
  exit 0
fi
echo "liftoff-etcd-join: etcd member $name joins the running cluster: $join" >&2
write awk -v cluster="$join" '
  /^initial-cluster-state:/ { print "initial-cluster-state: existing"; next }
  /^initial-cluster:/ { print "initial-cluster: " cluster; next }
  { print }' "$rendered"
