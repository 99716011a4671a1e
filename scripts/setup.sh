#!/usr/bin/env bash
# Installs everything the project needs from its own files, and does nothing
# when both environments already match their lock files:
#   node_modules  <- package-lock.json (npm ci)
#   .venv         <- requirements.txt  (python3 -m venv + pip)
set -euo pipefail
cd "$(dirname "$0")/.."

stamp() { sha256sum "$1" | cut -d' ' -f1; }

npm_want=$(stamp package-lock.json)
if [ "$(cat node_modules/.hoth-stamp 2>/dev/null)" != "$npm_want" ]; then
  echo "setup: installing Node packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$npm_want" > node_modules/.hoth-stamp
fi

py_want=$(stamp requirements.txt)
if [ "$(cat .venv/.hoth-stamp 2>/dev/null)" != "$py_want" ]; then
  command -v python3 >/dev/null || { echo "setup: python3 (3.11) is required" >&2; exit 1; }
  echo "setup: creating the Python environment .venv from requirements.txt" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt >&2
  echo "$py_want" > .venv/.hoth-stamp
fi

command -v java >/dev/null || { echo "setup: Java 17 is required for local Spark (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
