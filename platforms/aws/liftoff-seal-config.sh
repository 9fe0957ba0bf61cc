#!/bin/bash
# liftoff-seal-config BUCKET KEY REGION TAG tags this machine's full Ignition config, the object KEY
# of BUCKET, with TAG = this instance's ARN, once Ignition has read it. The machine's role may read
# the object only from an instance other than the one the tag names: from now on this instance's role
# credentials, should they leak, no longer read the config's keys, while a replacement instance (an
# ARN of its own) still boots from it. The role may tag the object only with the ARN of the instance
# asking, so no machine can undo a seal.
#
# It speaks to the instance metadata service (IMDSv2) and to S3's REST API with curl, signing with
# AWS Signature Version 4 through openssl, since the OS ships no AWS client. The object's other tags
# are kept. Once sealed, it writes the instance's ARN to /var/lib/liftoff/config-sealed, and its
# unit runs no more. LIFTOFF_IMDS_ENDPOINT, LIFTOFF_S3_ENDPOINT (path-style) and LIFTOFF_SEAL_STAMP
# replace AWS's endpoints and that file.
set -euo pipefail
export LC_ALL=C

if (($# != 4)); then
  echo "usage: liftoff-seal-config BUCKET KEY REGION TAG" >&2
  exit 2
fi
bucket=$1 key=$2 region=$3 tag=$4
stamp=${LIFTOFF_SEAL_STAMP:-/var/lib/liftoff/config-sealed}
imds=${LIFTOFF_IMDS_ENDPOINT:-http://169.254.169.254}

fail() {
  echo "liftoff-seal-config: $*" >&2
  exit 1
}

token=$(curl -fsS --retry 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$imds/latest/api/token") ||
  fail "no token from the instance metadata service at $imds"
metadata() {
  curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $token" "$imds/latest/$1" ||
    fail "cannot read $1 from the instance metadata service"
}
# field NAME reads a string field of the flat JSON documents IMDS serves.
field() {
  tr ',{}' '\n\n\n' | sed -n 's/^[[:space:]]*"'"$1"'"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | head -n 1
}

identity=$(metadata dynamic/instance-identity/document)
partition=$(metadata meta-data/services/partition)
domain=$(metadata meta-data/services/domain)
instance_arn="arn:$partition:ec2:$(field region <<<"$identity"):$(field accountId <<<"$identity"):instance/$(field instanceId <<<"$identity")"
role=$(metadata meta-data/iam/security-credentials/ | head -n 1)
[[ -n $role ]] || fail "this instance has no role"
credentials=$(metadata "meta-data/iam/security-credentials/$role")
access_key=$(field AccessKeyId <<<"$credentials")
secret_key=$(field SecretAccessKey <<<"$credentials")
session_token=$(field Token <<<"$credentials")
[[ -n $access_key && -n $secret_key && -n $session_token ]] || fail "role $role has no usable credentials"

# uri_encode encodes a key as S3's canonical URI: every byte but unreserved ones and slashes.
uri_encode() {
  local s=$1 out='' c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
    [A-Za-z0-9._~/-]) out+=$c ;;
    *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}
if [[ -n ${LIFTOFF_S3_ENDPOINT:-} ]]; then
  endpoint=$LIFTOFF_S3_ENDPOINT path=/$bucket/$(uri_encode "$key")
elif [[ $bucket == *.* ]]; then
  # A dotted bucket name does not match the endpoint's TLS certificate as a host name.
  endpoint=https://s3.$region.$domain path=/$bucket/$(uri_encode "$key")
else
  endpoint=https://$bucket.s3.$region.$domain path=/$(uri_encode "$key")
fi
host=${endpoint#*://}

sha256() { openssl dgst -sha256 -hex | sed 's/^.*= *//'; }
# hmac KEY DATA: KEY is hex, or key:TEXT for the first step.
hmac() {
  local k=$1
  [[ $k == key:* ]] || k=hexkey:$k
  printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "$k" -hex | sed 's/^.*= *//'
}

# s3_tagging METHOD [BODY] sends a signed request to the object's ?tagging subresource and prints
# S3's answer.
s3_tagging() {
  local method=$1 body=${2:-} now day payload md5 headers signed canonical scope signature k answer code
  now=$(date -u +%Y%m%dT%H%M%SZ)
  day=${now%%T*}
  payload=$(printf '%s' "$body" | sha256)
  headers="host:$host"$'\n'"x-amz-content-sha256:$payload"$'\n'"x-amz-date:$now"$'\n'"x-amz-security-token:$session_token"$'\n'
  signed="host;x-amz-content-sha256;x-amz-date;x-amz-security-token"
  local -a extra=()
  if [[ $method == PUT ]]; then
    md5=$(printf '%s' "$body" | openssl dgst -md5 -binary | base64)
    headers="content-md5:$md5"$'\n'"content-type:application/xml"$'\n'"$headers"
    signed="content-md5;content-type;$signed"
    extra=(-H "Content-MD5: $md5" -H "Content-Type: application/xml" --data-binary "$body")
  fi
  canonical="$method"$'\n'"$path"$'\n'"tagging="$'\n'"$headers"$'\n'"$signed"$'\n'"$payload"
  scope="$day/$region/s3/aws4_request"
  k=$(hmac "key:AWS4$secret_key" "$day")
  k=$(hmac "$k" "$region")
  k=$(hmac "$k" s3)
  k=$(hmac "$k" aws4_request)
  signature=$(hmac "$k" "AWS4-HMAC-SHA256"$'\n'"$now"$'\n'"$scope"$'\n'"$(printf '%s' "$canonical" | sha256)")
  answer=$(mktemp)
  code=$(curl -sS --retry 5 -o "$answer" -w '%{http_code}' -X "$method" "$endpoint$path?tagging" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=$access_key/$scope, SignedHeaders=$signed, Signature=$signature" \
    -H "x-amz-content-sha256: $payload" -H "x-amz-date: $now" -H "x-amz-security-token: $session_token" \
    "${extra[@]}") || code=000
  if [[ $code != 200 ]]; then
    echo "liftoff-seal-config: $method s3://$bucket/$key?tagging: HTTP $code" >&2
    cat "$answer" >&2
    rm -f "$answer"
    return 1
  fi
  cat "$answer"
  rm -f "$answer"
}

current=$(s3_tagging GET) || fail "cannot read the tags of s3://$bucket/$key"
# The other tags, as S3 wrote them, without an earlier instance's seal.
others=$(tr -d '\r\n' <<<"$current" | sed -e 's/>[[:space:]]*</></g' -e 's:^.*<TagSet>\(.*\)</TagSet>.*$:\1:' -e 's:^.*<TagSet/>.*$::' |
  sed 's:<Tag><Key>'"$tag"'</Key><Value>[^<]*</Value></Tag>::g')
[[ $others != *'<?xml'* ]] || fail "cannot read S3's answer: $current"
s3_tagging PUT "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>$others<Tag><Key>$tag</Key><Value>$instance_arn</Value></Tag></TagSet></Tagging>" >/dev/null ||
  fail "cannot tag s3://$bucket/$key as booted by $instance_arn"

mkdir -p "${stamp%/*}"
printf '%s\n' "$instance_arn" >"$stamp"
echo "liftoff-seal-config: s3://$bucket/$key is no longer readable by $instance_arn"
