"""One subsidy per slot and so many a year, first come first served (R1 checks 8-9, R7's last two checks).

Both the certificate subsidy (四(一)1) and the training subsidy (四(三)) say "每人每年可享受不超过3次，但同一职业
同一等级只享受一次": the checks depend on the person's earlier approvals, so they run in claim order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def first_come(person: pd.Series, slot: pd.Series, year: pd.Series, cap: pd.Series, already_paid: pd.Series,
               order: pd.DataFrame, duplicate: str, capped: str, prior: pd.Series | None = None) -> pd.DataFrame:
    """Reason (NA = approved; else `duplicate` or `capped`) and cap place of each claim, in claim order.

    Claims the ledger already pays go first (they keep their slot and cap place while their own records
    still qualify them); the rest follow in the order of `order`'s columns. A rejected claim uses up neither
    a slot nor a place. `prior` counts places already taken per "person|year" (the city's payouts).
    Vectorised across people: one round per rank within a person.
    """
    c = pd.DataFrame({"person_id": person, "slot": slot, "year_key": person + "|" + year.astype("int64").astype(str),
                      "cap": cap.astype("int64"), "prio": np.where(already_paid.to_numpy(dtype=bool), 0, 1)},
                     index=person.index)
    keys = [f"_o{i}" for i in range(order.shape[1])]
    c[keys] = order.to_numpy()
    c = c.sort_values(["person_id", "prio", *keys], kind="stable")
    c["rank"] = c.groupby("person_id", sort=False).cumcount()
    reason = pd.Series(pd.NA, index=c.index, dtype="string")
    place = pd.Series(pd.NA, index=c.index, dtype="Int64")
    taken: set[str] = set()
    used = {} if prior is None else {str(k): int(v) for k, v in prior.items()}
    for r in range(int(c["rank"].max()) + 1 if len(c) else 0):
        cur = c.loc[c["rank"] == r]
        # a set lookup per claim: Series.isin on Arrow strings converts every member of `taken` each round
        dup = pd.Series(np.fromiter((v in taken for v in cur["slot"].to_numpy(dtype=object)), bool, len(cur)),
                        index=cur.index)
        count = cur["year_key"].map(used).fillna(0).astype("int64")
        full = ~dup & (count >= cur["cap"])
        ok = ~dup & ~full
        reason.loc[cur.index[dup.to_numpy()]] = duplicate
        reason.loc[cur.index[full.to_numpy()]] = capped
        place.loc[cur.index[ok.to_numpy()]] = (count[ok] + 1).to_numpy()
        taken.update(cur.loc[ok, "slot"])
        for key, n in cur.loc[ok, "year_key"].value_counts().items():
            used[key] = used.get(key, 0) + int(n)
    return pd.DataFrame({"reason": reason, "cap_place": place}).reindex(person.index)
