"""Airflow runs in subprocesses with their own AIRFLOW_HOME, so its configuration never leaks into other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def airflow_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": str(REPO),
    })
    return env


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """An Airflow home with a migrated metadata database."""
    home = tmp_path_factory.mktemp("airflow_home")
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=airflow_env(home),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return home


def run_airflow_script(home: Path, script: str, *args: str, timeout: int = 900) -> dict:
    """Run a Python snippet under that Airflow home; it prints one JSON line last."""
    proc = subprocess.run([sys.executable, "-c", script, *args], env=airflow_env(home), capture_output=True,
                          text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-5000:])
    # print() writes the text and its newline in two writes, so a log line from another thread (OpenLineage's
    # client) can land between them, on the JSON's own line: read the object and ignore what follows it.
    result, _ = json.JSONDecoder().raw_decode(lines[-1])
    return result | {"_log": proc.stdout + proc.stderr}
