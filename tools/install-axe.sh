#!/usr/bin/env bash
# Installs axe-core, the accessibility checker the browser tests inject into every book page, into
# tools/axe/ (git-ignored) from the npm registry. The version is pinned exactly, here only.
set -euo pipefail
AXE_VERSION=4.14.1
cd "$(dirname "$0")"
if [ -f axe/node_modules/axe-core/axe.min.js ] \
    && grep -q "\"version\": \"$AXE_VERSION\"" axe/node_modules/axe-core/package.json; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "npm is missing: run 'sudo apt-get install npm' for the accessibility tests" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q npm
fi
mkdir -p axe
npm install --prefix axe --no-audit --no-fund --save-exact "axe-core@$AXE_VERSION"
