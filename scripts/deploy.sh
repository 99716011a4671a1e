#!/usr/bin/env bash
# One stack's deployment with the pinned CLI (scripts/install-pulumi.sh):
#   deploy.sh login    log in to the S3 backend ($PULUMI_BACKEND_URL)
#   deploy.sh preview  preview with the compliance policy pack; output kept in reports/
#   deploy.sh up       apply, with the policy pack again
# The stack comes from $STACK only.
set -euo pipefail
: "${STACK:?set STACK (dev, test or prod)}"
: "${PULUMI_BACKEND_URL:?set PULUMI_BACKEND_URL, e.g. s3://<state-bucket>/<prefix>}"
cd "$(dirname "$0")/.."
pulumi=./.pulumi-cli/pulumi
if [ ! -x "$pulumi" ]; then
  pulumi=$(command -v pulumi || true)
  [ -n "$pulumi" ] || { echo "deploy.sh: no Pulumi CLI; run 'npm run pulumi:install' first" >&2; exit 1; }
fi
export PULUMI_SKIP_UPDATE_CHECK=true
# The policy pack's config says what the stack's typed config requires.
policy_config="reports/policy-config-${STACK}.json"
mkdir -p reports
npx --no-install tsx scripts/policy-config.ts "$STACK" > "$policy_config"
case "${1:-}" in
  login)
    "$pulumi" login "$PULUMI_BACKEND_URL"
    "$pulumi" stack select "$STACK"
    ;;
  preview)
    mkdir -p reports
    "$pulumi" preview --stack "$STACK" --diff --policy-pack policy \
      --policy-pack-config "$policy_config" --non-interactive \
      2>&1 | tee "reports/preview-${STACK}.txt"
    ;;
  up)
    "$pulumi" up --stack "$STACK" --yes --skip-preview --policy-pack policy \
      --policy-pack-config "$policy_config" --non-interactive
    ;;
  *)
    echo "usage: deploy.sh login|preview|up" >&2
    exit 2
    ;;
esac
