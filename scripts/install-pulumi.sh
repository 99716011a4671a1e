#!/usr/bin/env bash
# Installs the pinned Pulumi CLI ($PULUMI_VERSION) into .pulumi-cli/ and
# refuses to continue unless its tarball has the pinned SHA-256
# ($PULUMI_SHA256). Used by the pipeline's deploy stage (npm run pulumi:install).
set -euo pipefail
: "${PULUMI_VERSION:?set PULUMI_VERSION, e.g. 3.132.0}"
: "${PULUMI_SHA256:?set PULUMI_SHA256, the SHA-256 of pulumi-v\$PULUMI_VERSION-linux-x64.tar.gz}"
cd "$(dirname "$0")/.."
tarball="pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz"
base="${PULUMI_DOWNLOAD_BASE:-https://github.com/pulumi/pulumi/releases/download}"
url="${base}/v${PULUMI_VERSION}/${tarball}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/$tarball" "$url"
echo "${PULUMI_SHA256}  $tmp/$tarball" | sha256sum --check --strict -
rm -rf .pulumi-cli && mkdir -p .pulumi-cli
tar -xzf "$tmp/$tarball" -C .pulumi-cli --strip-components=1
./.pulumi-cli/pulumi version
