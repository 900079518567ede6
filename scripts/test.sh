#!/usr/bin/env bash
# The test command: set up .venv, make sure PostgreSQL runs, lint, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure_postgres.sh
scripts/ensure_chromium.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
