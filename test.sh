#!/usr/bin/env bash
# Installs everything the tests need (pip packages, Azurite from npm) and runs
# the whole suite. The tests start their own servers (emulator, moto, Azurite)
# on free loopback ports, so nothing has to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
exec python -m pytest "$@"
