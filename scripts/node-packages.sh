#!/usr/bin/env bash
# Install the npm packages the tests use (pm2 for job tests), if missing.
set -euo pipefail
if ! command -v pm2 >/dev/null 2>&1; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "npm is missing: install Node.js (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
    echo "installing pm2"
    npm install -g --no-fund --no-audit pm2 >/dev/null
fi
