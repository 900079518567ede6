"""Crash points for the kill -9 tests: a run can be told to SIGKILL itself at a named point.

Set SUBSIDY_LEDGER_CRASH_AT=<point> (never in production); checkpoint(<point>) then kills the process
on the spot, with no cleanup, exactly as a power cut or an OOM kill would.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "SUBSIDY_LEDGER_CRASH_AT"


def checkpoint(point: str) -> None:
    """Die here, uncleanly, if this is the crash point the environment names."""
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
