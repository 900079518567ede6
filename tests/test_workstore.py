"""The work store: the same round trip through a folder and through Airflow's object storage (file://)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger import workstore


@pytest.mark.parametrize("as_url", [False, True], ids=["folder", "file-url"])
def test_frames_and_plans_round_trip_and_the_run_goes(tmp_path, as_url):
    root = workstore.root(f"file://{tmp_path}/work" if as_url else str(tmp_path / "work"))
    assert isinstance(root, Path) is not as_url  # a URL goes through ObjectStoragePath
    run = root / "run1"
    frame = pd.DataFrame({"person_id": pd.Series(["P1", None], dtype="string"), "n": [1, 2]})
    workstore.write_frame(run / "p0" / "certificates.parquet", frame)
    workstore.write_json(run / "plan.json", {"k": 1, "shared": []})
    assert workstore.read_frame(run / "p0" / "certificates.parquet").equals(frame)
    assert workstore.read_json(run / "plan.json") == {"k": 1, "shared": []}
    assert workstore.has(run / "plan.json") and not workstore.has(run / "nothing.json")
    if not as_url:
        assert oct((tmp_path / "work" / "run1" / "p0").stat().st_mode & 0o777) == "0o700"  # full identity numbers
    workstore.remove(run)
    workstore.remove(run)  # nothing there is fine
    assert not (tmp_path / "work" / "run1").exists()
