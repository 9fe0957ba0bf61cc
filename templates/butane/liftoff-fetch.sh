#!/bin/bash
# liftoff-fetch NAME VERSION URL CHECKSUM [BINDIR] [PROGRAM]
#
# Downloads a release of NAME, verifies it, installs it under /opt/liftoff/NAME-VERSION/ and links
# every program of the release into BINDIR (default /opt/bin). Nothing is installed unless the
# checksum matches and the release holds PROGRAM (default NAME). CHECKSUM is one of:
#   sha512:HEX             a digest pinned in the cluster spec
#   sha512-url:URL         a file published beside the download holding its sha512 digest
#   sha256sums-url:URL     a SHA256SUMS list published with the release naming the download
# LIFTOFF_ROOT, when set, is a directory standing for / (for tests).
set -euo pipefail
name=$1 version=$2 url=$3 checksum=$4 bindir=${5:-/opt/bin} program=${6:-$1}
root=${LIFTOFF_ROOT:-}
dest=/opt/liftoff/$name-$version
file=${url##*/}
mkdir -p "$root/opt/liftoff" "$root$bindir"
tmp=$(mktemp -d "$root/opt/liftoff/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "liftoff-fetch: $*" >&2
  exit 1
}

fetch() {
  curl --fail --location --silent --show-error --retry 10 --retry-delay 3 --retry-all-errors \
    --proto '=https' --tlsv1.2 --output "$2" "$1"
}

fetch "$url" "$tmp/$file"
case $checksum in
sha512:*)
  want=${checksum#sha512:}
  ;;
sha512-url:*)
  fetch "${checksum#sha512-url:}" "$tmp/sha512"
  want=$(cut -d' ' -f1 "$tmp/sha512")
  ;;
sha256sums-url:*)
  fetch "${checksum#sha256sums-url:}" "$tmp/sums"
  want=$(awk -v f="$file" '$2 == f || $2 == "*" f { print $1 }' "$tmp/sums")
  [[ $(wc -w <<<"$want") == 1 ]] || fail "$file is not listed once in ${checksum#*:}"
  ;;
*)
  fail "unknown checksum kind in $checksum"
  ;;
esac
case ${#want} in
128) echo "$want  $tmp/$file" | sha512sum --check --quiet --status || fail "$url does not match its sha512 $want" ;;
64) echo "$want  $tmp/$file" | sha256sum --check --quiet --status || fail "$url does not match its sha256 $want" ;;
*) fail "no usable digest for $url" ;;
esac

mkdir "$tmp/out"
release=$tmp/out
case $file in
*.tar.gz | *.tgz)
  tar --extract --gzip --file "$tmp/$file" --directory "$tmp/out" --no-same-owner
  # A release archive holds its programs either at its top or inside one directory.
  entries=("$tmp/out"/*)
  if [[ ${#entries[@]} == 1 && -d ${entries[0]} ]]; then
    release=${entries[0]}
  fi
  ;;
*) install -m 0755 "$tmp/$file" "$tmp/out/$name" ;;
esac
[[ -f $release/$program && -x $release/$program ]] || fail "$url holds no $program program"
rm -rf "$root$dest"
mv "$release" "$root$dest"
for p in "$root$dest"/*; do
  if [[ -f $p && -x $p ]]; then
    ln -sfn "$dest/${p##*/}" "$root$bindir/${p##*/}"
  fi
done
