"""Identity numbers, credit codes and masking (CONTRACT.md "Identifiers")."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from stdnum.cn import ric, uscc
from subsidy_ledger.generate import credit_codes, resident_ids
from subsidy_ledger.identifiers import (
    credit_code_valid,
    mask_resident_id,
    resident_id_problem,
    resident_id_valid,
    ric_check_ok,
    uscc_check_ok,
)

TODAY = dt.date(2026, 11, 24)


def with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


def test_nanxun_resident_born_before_2003_is_valid_although_stdnum_validate_refuses():
    pid = with_check("33050319700101001")
    assert not ric.is_valid(pid)  # stdnum requires the area to exist in the birth year
    assert resident_id_problem(pid, TODAY) is None


@pytest.mark.parametrize("value,problem", [
    ("3305031970010100", "format"),                    # 16 characters
    ("3305031970010100123", "format"),                 # 19 characters
    ("33050319700101001x", "format"),                  # raw lower-case x (validate compacts it first)
    ("３３０５０３19700101001" + "1", "format"),         # full-width digits
])
def test_shapes(value, problem):
    assert resident_id_problem(value, TODAY) == problem


def test_wrong_check_character():
    good = with_check("33050319800215123")
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    assert resident_id_problem(bad, TODAY) == "check_character"


def test_impossible_and_future_birth_dates():
    assert resident_id_problem(with_check("33050319810230123"), TODAY) == "birth_date"
    assert resident_id_problem(with_check("33050320270101123"), TODAY) == "birth_date"


def test_unknown_area_code():
    assert resident_id_problem(with_check("99999919800101123"), TODAY) == "area_code"


def test_vector_check_and_generator_output():
    ids = pd.Series(resident_ids(np.random.default_rng(1), 500), dtype="string")
    assert resident_id_valid(ids, TODAY).all()
    assert ids.str.startswith("330503").all() and ids.is_unique


def test_credit_codes():
    codes = pd.Series(list(credit_codes(np.random.default_rng(2), 50)) + ["91330503MA2B3C4D5X", None])
    ok = credit_code_valid(codes)
    assert ok[:50].all() and not ok[50] and not ok[51]


def test_masking_keeps_first_six_and_last_four():
    masked = mask_resident_id(pd.Series(["33050319700101001X"]))
    assert masked[0] == "330503********001X"


def test_vector_and_scalar_checks_agree():
    good = list(resident_ids(np.random.default_rng(3), 20))
    bad = [g[:17] + ("0" if g[17] != "0" else "1") for g in good[:5]]
    odd = [with_check("33050319810230123"), with_check("99999919800101123"), with_check("33050320270101123"),
           "abc", "33050319700101001x", None]
    values = good + bad + odd
    vector = resident_id_valid(pd.Series(values, dtype="string"), TODAY).tolist()
    assert vector == [v is not None and resident_id_problem(v, TODAY) is None for v in values]
    assert sum(vector) == 20


def test_column_check_characters_agree_with_stdnum():
    # every 18th character a body can carry, on random bodies: right for exactly one of the eleven
    rng = np.random.default_rng(4)
    bodies = ["".join(map(str, d)) for d in rng.integers(0, 10, size=(3000, 17))]
    values = [b + c for b in bodies for c in "0123456789X"]
    ok = ric_check_ok(pd.Series(values, dtype="string"))
    assert ok.tolist() == [ric.calc_check_digit(v) == v[17] for v in values]
    assert ok.sum() == len(bodies)


def test_column_credit_code_checks_agree_with_stdnum():
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    rng = np.random.default_rng(5)
    codes = ["".join(map(str, rng.integers(0, 10, 8))) + "".join(alphabet[i] for i in rng.integers(0, 31, 10))
             for _ in range(30000)]
    codes += [c[:17] + uscc.calc_check_digit(c[:17]) for c in codes[:3000]]  # about 1 in 31 random ones is valid
    codes += ["91330503MA2B3C4D5I", "9133O503MA2B3C4D5X", "91330503ma2b3c4d5x", "91330503MA2B3C4D5", " ", None]
    expected = [isinstance(c, str) and uscc.is_valid(c) and c == uscc.compact(c) for c in codes]
    assert credit_code_valid(pd.Series(codes, dtype="string")).tolist() == expected
    assert uscc_check_ok(pd.Series(codes[:30000], dtype="string")).tolist() == expected[:30000]
    assert 3000 < sum(expected) < 6000
