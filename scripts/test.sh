#!/usr/bin/env bash
# The whole test suite from a clean checkout: install (with test extras), lint and type-check the
# package (ruff, mypy: configured in pyproject.toml), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
.venv/bin/python -m ruff check pneumoviewer
.venv/bin/python -m mypy pneumoviewer
exec .venv/bin/python -m pytest "$@"
