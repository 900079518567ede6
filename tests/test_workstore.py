"""The work store: the same round trip through a folder and through Airflow's object storage (file://); every
frame sealed with its run's key."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pandas as pd
import pytest
from subsidy_ledger import workstore

SEAL = workstore.Seal.for_run(bytes(range(32)), "night_2022-06-30")
ID = "330503199001011234"


@pytest.mark.parametrize("as_url", [False, True], ids=["folder", "file-url"])
def test_frames_and_plans_round_trip_and_the_run_goes(tmp_path, as_url):
    root = workstore.root(f"file://{tmp_path}/work" if as_url else str(tmp_path / "work"))
    assert isinstance(root, Path) is not as_url  # a URL goes through ObjectStoragePath
    run = root / "run1"
    frame = pd.DataFrame({"person_id": pd.Series(["P1", None], dtype="string"), "n": [1, 2]})
    workstore.write_frame(run / "p0" / "certificates.parquet", frame, seal=SEAL)
    workstore.write_json(run / "plan.json", {"k": 1, "shared": []})
    assert workstore.read_frame(run / "p0" / "certificates.parquet", seal=SEAL).equals(frame)
    assert workstore.read_frame(run / "p0" / "certificates.parquet", ["n"], seal=SEAL).equals(frame[["n"]])
    assert workstore.read_json(run / "plan.json") == {"k": 1, "shared": []}
    assert workstore.has(run / "plan.json") and not workstore.has(run / "nothing.json")
    if not as_url:
        assert oct((tmp_path / "work" / "run1" / "p0").stat().st_mode & 0o777) == "0o700"  # full identity numbers
    workstore.remove(run)
    workstore.remove(run)  # nothing there is fine
    assert not (tmp_path / "work" / "run1").exists()


@pytest.fixture
def sealed(tmp_path) -> Path:
    """A sealed frame of three chunks (a small chunk size), with an identity number and an account number."""
    path = tmp_path / "work" / "raw" / "payee_accounts.parquet"
    frame = pd.DataFrame({"person_id": [ID] * 3000, "account_no": ["6217000010001234567"] * 3000,
                          "n": range(3000)})
    workstore.write_frame(path, frame, seal=SEAL)
    return path


def test_a_sealed_frame_holds_no_readable_number_and_reads_back_with_its_key(sealed):
    data = sealed.read_bytes()
    assert data.startswith(workstore.MAGIC)
    assert ID.encode() not in data and b"6217000010001234567" not in data and b"PAR1" not in data
    assert workstore.read_frame(sealed, seal=SEAL)["person_id"].eq(ID).all()
    plain = io.BytesIO()  # the same frame unsealed: the numbers are there in the clear, as parquet keeps them
    pd.DataFrame({"person_id": [ID]}).to_parquet(plain)
    assert ID.encode() in plain.getvalue()
    assert "hidden" in repr(SEAL) and SEAL._key.hex() not in repr(SEAL)
    assert pickle.loads(pickle.dumps(SEAL)).unseal(io.BytesIO(data), "x") == SEAL.unseal(io.BytesIO(data), "x")


def test_chunks_are_bound_to_their_place_and_their_run(sealed, monkeypatch):
    monkeypatch.setattr(workstore, "CHUNK_BYTES", 4096)
    path = sealed.with_name("chunked.parquet")
    frame = pd.DataFrame({"person_id": [f"{i:018d}" for i in range(3000)]})
    workstore.write_frame(path, frame, seal=SEAL)
    data = path.read_bytes()
    assert workstore.read_frame(path, seal=SEAL).equals(frame)
    other = workstore.Seal.for_run(bytes(range(32)), "night_2022-07-08")  # another night's key
    with pytest.raises(workstore.SealError, match="not sealed with this run's key"):
        workstore.read_frame(path, seal=other)
    chunk = 12 + 4 + 4096 + 16  # nonce, length, a full chunk's ciphertext and tag
    first, second = data[4:4 + chunk], data[4 + chunk:4 + 2 * chunk]
    cases = {
        "cut short": data[:4 + chunk],                                          # a whole last chunk gone
        "not sealed with": data[:4] + second + first + data[4 + 2 * chunk:],   # two chunks swapped
        "goes on after": data + data[4:4 + chunk],                             # a chunk added after the last
        "is not a sealed": data[4:],                                           # no header
    }
    altered = bytearray(data)
    altered[100] ^= 1
    cases["not sealed with this run's key, or was altered"] = bytes(altered)
    for match, broken in cases.items():
        path.write_bytes(broken)
        with pytest.raises(workstore.SealError, match=match):
            workstore.read_frame(path, seal=SEAL)


def test_a_failed_write_seals_no_last_chunk(tmp_path):
    path = tmp_path / "w" / "half.parquet"
    with pytest.raises(RuntimeError), workstore.sealed_writer(path, SEAL) as f:
        f.write(b"x" * 10)
        raise RuntimeError("the writer failed")
    with pytest.raises(workstore.SealError, match="cut short"), open(path, "rb") as f:
        SEAL.unseal(f, "half")
