#!/bin/bash
# liftoff-fetch NAME VERSION URL CHECKSUM
#
# Downloads a release of NAME, verifies it, installs it under /opt/liftoff/NAME-VERSION/ and links
# /opt/bin/NAME (and any other programs of the same release) to it. Nothing is installed unless the
# checksum matches. CHECKSUM is one of:
#   sha512:HEX             a digest pinned in the cluster spec
#   sha512-url:URL         a file published beside the download holding its sha512 digest
#   sha256sums-url:URL     a SHA256SUMS list published with the release naming the download
set -euo pipefail
name=$1 version=$2 url=$3 checksum=$4
dest=/opt/liftoff/$name-$version
file=${url##*/}
mkdir -p /opt/liftoff /opt/bin
tmp=$(mktemp -d /opt/liftoff/.fetch-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

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
  [[ $(wc -w <<<"$want") == 1 ]] || { echo "liftoff-fetch: $file is not listed once in ${checksum#*:}" >&2; exit 1; }
  ;;
*)
  echo "liftoff-fetch: unknown checksum kind in $checksum" >&2
  exit 1
  ;;
esac
case ${#want} in
128) echo "$want  $tmp/$file" | sha512sum --check --quiet ;;
64) echo "$want  $tmp/$file" | sha256sum --check --quiet ;;
*) echo "liftoff-fetch: no usable digest for $url" >&2; exit 1 ;;
esac

mkdir "$tmp/out"
case $file in
*.tar.gz | *.tgz) tar --extract --gzip --file "$tmp/$file" --directory "$tmp/out" --strip-components=1 --no-same-owner ;;
*) install -m 0755 "$tmp/$file" "$tmp/out/$name" ;;
esac
[[ -x $tmp/out/$name ]] || { echo "liftoff-fetch: $url holds no $name program" >&2; exit 1; }
rm -rf "$dest"
mv "$tmp/out" "$dest"
for program in "$dest"/*; do
  if [[ -f $program && -x $program ]]; then
    ln -sfn "$program" "/opt/bin/${program##*/}"
  fi
done
