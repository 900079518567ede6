#!/usr/bin/env bash
# One command on a fresh machine: set up .venv, generate a sample drop, run the nightly sync on it.
# Usage: scripts/demo.sh [PERSONS] [AS_OF]      (defaults: 20000 persons, as-of 2022-06-30)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PERSONS=${1:-20000}
AS_OF=${2:-2022-06-30}
rm -rf sample/drop sample/out sample/warehouse.sqlite*
.venv/bin/subsidy-ledger generate --persons "$PERSONS" --seed 1 --out sample/drop
.venv/bin/subsidy-ledger run --sources sample/drop --as-of "$AS_OF" \
  --warehouse sqlite:///sample/warehouse.sqlite --out sample/out
echo
echo "== sample/out/$AS_OF/summary.csv (the funding request) =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$AS_OF/summary.csv"
echo
echo "== sample/out/$AS_OF/reconciliation.csv =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$AS_OF/reconciliation.csv" | cut -d, -f1,3,4,6-9
