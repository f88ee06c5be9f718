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
# The status page is checked in a real headless browser: Debian's chromium package.
if [ ! -x /usr/bin/chromium ]; then
    echo "test.sh: installing chromium (apt-get) for the status page's browser test" >&2
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; then
        echo "test.sh: could not install chromium with apt-get (needs root and Debian's package registry);" >&2
        echo "test.sh: tests/status/test_status_live.py will fail until /usr/bin/chromium exists" >&2
    fi
fi
# Static checks first: a lint or type error fails the run before any test starts.
# Packages that pass both join this list (settings in pyproject.toml); add more here.
# tools/ is not in it yet: tools/soak.py, faults.py, outcome.py and harness.py still have findings.
TYPED_PACKAGES=(
    common toloka_client file_store tables status emulator engine aggregation handlers pipelines reporting
    pipeline.py demo.py report.py add_password.py commands bench tools
)
static_checks() {
    python -m ruff check "${TYPED_PACKAGES[@]}"
    python -m mypy "${TYPED_PACKAGES[@]}"
}
static_checks
# Four workers on two cores: most tests wait on servers, crowds and child processes, not on
# the CPU. --dist loadfile keeps a module's tests (and its module-scoped fixtures) together.
exec python -m pytest -n 4 --dist loadfile "$@"
