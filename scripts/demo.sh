#!/usr/bin/env bash
# One command on a fresh machine: set up .venv, generate a sample drop, run the nightly sync on it twice:
# on AS_OF the approved claims enter publicity (公示, P1); on the first night after the publicity ends they
# are posted and the bank is instructed for those with an account (P3).
# Usage: scripts/demo.sh [PERSONS] [AS_OF]      (defaults: 20000 persons, as-of 2022-06-30)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PERSONS=${1:-20000}
AS_OF=${2:-2022-06-30}
rm -rf sample/drop sample/out sample/warehouse.sqlite*
.venv/bin/subsidy-ledger generate --persons "$PERSONS" --seed 1 --out sample/drop
run() {
  .venv/bin/subsidy-ledger run --sources sample/drop --as-of "$1" \
    --warehouse sqlite:///sample/warehouse.sqlite --out sample/out
}
PAY_DAY=$(.venv/bin/python -c "
import datetime as dt, sys
from subsidy_ledger.policy import PolicyBook
from subsidy_ledger.workdays import add_working_days
start = dt.date.fromisoformat(sys.argv[1])
print(add_working_days(start, PolicyBook.load().versions[-1].publicity_working_days) + dt.timedelta(days=1))
" "$AS_OF")
echo "== night $AS_OF: decide; approved claims enter publicity =="
run "$AS_OF"
echo
echo "== night $PAY_DAY: publicity over; post and instruct the bank =="
run "$PAY_DAY"
echo
echo "== sample/out/$PAY_DAY/summary.csv (the funding request) =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$PAY_DAY/summary.csv"
echo
echo "== sample/out/$PAY_DAY/payments_reconciliation.csv (owed = paid + in transit + waiting) =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$PAY_DAY/payments_reconciliation.csv"
echo
echo "== sample/out/$PAY_DAY/reconciliation.csv =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$PAY_DAY/reconciliation.csv" | cut -d, -f1,3,4,6-8,11,12
echo
echo "bank instruction files (full account numbers, mode 0600): sample/out/payments/$PAY_DAY/"
echo "workbooks for people: sample/out/$PAY_DAY/<DEPT>/{ledger,decisions,publicity}.xlsx and summary.xlsx"
echo
echo "== sample/out/$PAY_DAY/assessment/behind_plan.csv (通报: plans behind pro rata, first lines) =="
sed '1s/^\xEF\xBB\xBF//' "sample/out/$PAY_DAY/assessment/behind_plan.csv" | head -8
echo "assessment of the plan (A1): sample/out/$PAY_DAY/assessment/{assessment.html,assessment.xlsx,*.png}"
