#!/usr/bin/env bash
# Re-make the README's screenshots: the auditors' and the leading group's pages (headless Chromium, through a real
# Airflow api-server)
# and a department ledger workbook as LibreOffice prints it (Debian: libreoffice-calc-nogui, poppler-utils).
# Usage: scripts/screenshots.sh   (after scripts/demo.sh has written sample/out)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/images
SUBSIDY_LEDGER_SCREENSHOTS=$PWD/docs/images .venv/bin/python -m pytest -q tests/dags/test_auditor_ui.py
book=$(ls -d sample/out/20*/HRSS/ledger.xlsx | tail -1)
tmp=$(mktemp -d)
cp "$book" "$tmp/ledger.xlsx"
(cd "$tmp" && soffice --headless --convert-to pdf ledger.xlsx >/dev/null)
pdftoppm -r 110 -png -singlefile -f 1 -l 1 -x 40 -y 40 -W 560 -H 600 "$tmp/ledger.pdf" "$tmp/cover"
pdftoppm -r 170 -png -singlefile -f 2 -l 2 -x 60 -y 80 -W 1450 -H 560 "$tmp/ledger.pdf" "$tmp/rows"
cp "$tmp/cover.png" docs/images/workbook_cover.png
cp "$tmp/rows.png" docs/images/workbook_ledger.png
rm -rf "$tmp"
