"""First come, first served (R1 checks 8-9, R7's last two): the vectorised rounds against a claim-by-claim walk."""

import numpy as np
import pandas as pd
import pytest
from subsidy_ledger.rules.claim_order import first_come

DUP, CAP = "duplicate_occupation_level", "annual_cap_reached"


def walked(person, slot, year, cap, already_paid, order, prior=None) -> pd.DataFrame:
    """The plain reading of the rule: each person's claims one at a time, paid ones first, then in order."""
    c = pd.DataFrame({"person": person, "slot": slot, "year": year, "cap": cap,
                      "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1)})
    keys = [f"_o{i}" for i in range(order.shape[1])]
    c[keys] = order.to_numpy()
    taken, used = set(), {str(k): int(v) for k, v in (prior if prior is not None else {}).items()}
    reason, place = {}, {}
    for i, row in c.sort_values(["person", "prio", *keys], kind="stable").iterrows():
        key = f"{row['person']}|{int(row['year'])}"
        if row["slot"] in taken:
            reason[i] = DUP
        elif used.get(key, 0) >= row["cap"]:
            reason[i] = CAP
        else:
            used[key] = used.get(key, 0) + 1
            place[i] = used[key]
            taken.add(row["slot"])
    return pd.DataFrame({"reason": pd.Series(reason, index=c.index, dtype="string"),
                         "cap_place": pd.Series(place, index=c.index, dtype="Int64")})


def claims(seed: int, n: int) -> tuple:
    """n random claims of a few people: shared slots, two years, caps of 1-3, some already paid, ties in order."""
    rng = np.random.default_rng(seed)
    index = pd.Index(rng.permutation(np.arange(100, 100 + n)))  # not a range: results follow the caller's index
    person = pd.Series(rng.choice(["A", "B", "C", "D"], n), index=index, dtype="string")
    slot = person + "|" + pd.Series(rng.choice(["x", "y", "z", "w"], n), index=index, dtype="string")
    year = pd.Series(rng.choice([2021, 2022], n), index=index)
    cap = pd.Series(rng.integers(1, 4, n), index=index)
    paid = pd.Series(rng.random(n) < 0.2, index=index)
    order = pd.DataFrame({"on": rng.choice(pd.date_range("2021-01-01", periods=5), n), "no": rng.integers(0, 3, n)},
                         index=index)
    return person, slot, year, cap, paid, order


@pytest.mark.parametrize("seed", range(20))
def test_rounds_agree_with_the_claim_by_claim_walk(seed):
    args = claims(seed, 30)
    prior = pd.Series({"A|2021": 1, "C|2022": 2, "Z|2022": 5})  # Z has no claims here
    for given in (None, prior):
        got = first_come(*args, DUP, CAP, given)
        pd.testing.assert_frame_equal(got, walked(*args, given).reindex(got.index))


def test_a_rejected_claim_takes_neither_slot_nor_place_and_paid_claims_go_first():
    person = pd.Series(["A"] * 4, dtype="string")
    slot = pd.Series(["A|x", "A|x", "A|y", "A|z"], dtype="string")
    year, cap = pd.Series([2021] * 4), pd.Series([2] * 4)
    paid = pd.Series([False, False, False, True])
    order = pd.DataFrame({"no": [1, 2, 3, 4]})
    got = first_come(person, slot, year, cap, paid, order, DUP, CAP)
    assert got["reason"].tolist() == [pd.NA, DUP, CAP, pd.NA]
    assert got["cap_place"].tolist() == [2, pd.NA, pd.NA, 1]


def test_no_claims():
    empty = pd.Series([], dtype="string")
    got = first_come(empty, empty, pd.Series([], dtype="int64"), pd.Series([], dtype="int64"),
                     pd.Series([], dtype=bool), pd.DataFrame({"no": []}), DUP, CAP)
    assert got.empty and list(got.columns) == ["reason", "cap_place"]
