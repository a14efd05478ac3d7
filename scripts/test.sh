#!/usr/bin/env bash
# The whole test suite from a clean checkout: install (with test extras), then pytest.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
exec .venv/bin/python -m pytest "$@"
