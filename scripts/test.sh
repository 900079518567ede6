#!/usr/bin/env bash
# The test command: set up .venv, make sure PostgreSQL runs, lint, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/ensure_postgres.sh
scripts/ensure_chromium.sh
.venv/bin/ruff check .
# one pytest worker per core (SUBSIDY_LEDGER_TEST_WORKERS overrides; 0 runs in this process); a module's tests
# stay on one worker, so its module-scoped nights are run once
exec .venv/bin/python -m pytest -n "${SUBSIDY_LEDGER_TEST_WORKERS:-auto}" --dist loadfile "$@"
