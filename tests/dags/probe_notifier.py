"""A notifier for the DAG tests: each failure it hears of is appended to $SUBSIDY_LEDGER_PROBE_FILE."""

from __future__ import annotations

import os

from airflow.sdk import BaseNotifier


class Probe(BaseNotifier):
    """Writes "<task_id> <try_number>" per failed task."""

    def notify(self, context):
        """Record the failed task and its try."""
        ti = context["ti"]
        with open(os.environ["SUBSIDY_LEDGER_PROBE_FILE"], "a", encoding="utf-8") as fh:
            fh.write(f"{ti.task_id} {ti.try_number}\n")
