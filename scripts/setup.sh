#!/usr/bin/env bash
# Installs everything the project needs from its own files, and does nothing
# when both environments already match their lock files:
#   node_modules  <- package-lock.json (npm ci)
#   .venv         <- requirements.txt  (python3 -m venv + pip)
set -euo pipefail
cd "$(dirname "$0")/.."

stamp() { sha256sum "$1" | cut -d' ' -f1; }
started=$SECONDS
# A line per phase with its elapsed time, so a long first install never looks hung.
phase() { echo "setup: $* ($((SECONDS - started)) s so far)" >&2; }

npm_want=$(stamp package-lock.json)
if [ "$(cat node_modules/.hoth-stamp 2>/dev/null)" != "$npm_want" ]; then
  phase "installing Node packages with npm ci (about 1 minute on a first install)"
  npm ci --no-audit --no-fund --loglevel=error --progress=true >&2
  echo "$npm_want" > node_modules/.hoth-stamp
  phase "Node packages installed"
fi

py_want=$(stamp requirements.txt)
if [ "$(cat .venv/.hoth-stamp 2>/dev/null)" != "$py_want" ]; then
  command -v python3 >/dev/null || { echo "setup: python3 (3.11) is required" >&2; exit 1; }
  phase "creating the Python environment .venv from requirements.txt (3-8 minutes on a first install: pip fetches about 1.1 GB, most of it pyspark; pip's own progress follows)"
  python3 -m venv .venv
  # pip prints a line per package it collects and installs (progress bars on a terminal).
  .venv/bin/pip install --disable-pip-version-check --progress-bar on -r requirements.txt >&2
  echo "$py_want" > .venv/.hoth-stamp
  phase "Python environment ready"
fi

command -v java >/dev/null || { echo "setup: Java 17 is required for local Spark (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
