"""Ledger: post the difference between what decisions say is owed and what the ledger holds.

Lines are only ever appended (the database refuses UPDATE and DELETE). A changed claim gets a
reversal of its active payout and a new payout; a claim no longer payable gets a reversal.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import sqlalchemy as sa

from .contract import CLAIM_KEY
from .warehouse import insert_frame, ledger_lines, ledger_lock, read_frame

LINE_ATTRS = ["department_code", "fund", "subsidy_type", "person_id", "name", "reference", "occupation_code",
              "level", "uplift_units", "rule_id", "policy_version"]


class LedgerInvariantError(RuntimeError):
    """The ledger after posting would not equal what the decisions say is owed."""


class LedgerBusyError(RuntimeError):
    """Another run holds the posting lock for longer than this run will wait."""


def acquire_lock(conn, run_id: str, timeout_s: float = 120.0) -> None:
    """Take the warehouse's posting lock for the rest of this transaction; other posters queue behind it.

    The lock is the single ledger_lock row, updated as the transaction's first write: PostgreSQL holds
    its row lock until commit; SQLite allows one writing transaction at a time.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(timeout_s * 1000)}ms'")
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    try:
        conn.execute(sa.update(ledger_lock).where(ledger_lock.c.name == "ledger").values(
            holder=run_id, acquired_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    except sa.exc.OperationalError as exc:
        raise LedgerBusyError(f"another run is posting to the ledger and held the lock for over {timeout_s:.0f} s; "
                              "try again when it has finished") from exc


def high_water(conn) -> int:
    """The ledger's last line sequence number (0 when empty): it moves whenever anything is posted."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(ledger_lines.c.seq), 0))).scalar_one())


def last_posted_on(conn) -> dt.date | None:
    """The latest posting date in the ledger, or None."""
    value = conn.execute(sa.select(sa.func.max(ledger_lines.c.posted_on))).scalar_one()
    return dt.date.fromisoformat(str(value)[:10]) if value is not None else None


def payout_id(subsidy_type: str, reference: str, person_id: str, ordinal: int) -> str:
    """Deterministic line id: the claim and the line's ordinal within the claim."""
    digest = hashlib.sha256(f"{subsidy_type}|{reference}|{person_id}|{ordinal}".encode()).hexdigest()
    return "PO" + digest[:22].upper()


def claim_state(conn, subsidy_types: list[str], posted_through: dt.date | None = None) -> pd.DataFrame:
    """Per claim in the ledger: net amount, number of lines, and its active (unreversed) payout line; with
    posted_through, as the ledger stood after that day's postings (a replayed night sees its own ledger)."""
    where = ledger_lines.c.subsidy_type.in_(subsidy_types)
    if posted_through is not None:
        where = where & (ledger_lines.c.posted_on <= posted_through)
    lines = read_frame(conn, ledger_lines, where)
    if lines.empty:
        cols = [*CLAIM_KEY, "net_fen", "n_lines", "active_id", "active_amount", *[f"active_{a}" for a in
                                                                                  LINE_ATTRS if a not in CLAIM_KEY]]
        return pd.DataFrame(columns=cols)
    g = lines.groupby(CLAIM_KEY, sort=False)
    state = pd.DataFrame({"net_fen": g["amount_fen"].sum(), "n_lines": g.size()}).reset_index()
    reversed_ids = set(lines["reverses_payout_id"].dropna())
    active = lines.loc[(lines["entry_type"] == "payout") & ~lines["payout_id"].isin(reversed_ids)]
    active = active.sort_values("seq").groupby(CLAIM_KEY, sort=False).tail(1)
    keep = [a for a in LINE_ATTRS if a not in CLAIM_KEY]
    active = active[[*CLAIM_KEY, "payout_id", "amount_fen", *keep]].rename(
        columns={"payout_id": "active_id", "amount_fen": "active_amount", **{a: f"active_{a}" for a in keep}})
    return state.merge(active, on=CLAIM_KEY, how="left")


def waiting(decisions: pd.DataFrame) -> pd.Series:
    """Claims whose ledger lines stand untouched tonight: held, or approved but still in publicity (P3)."""
    still = ~decisions["payable"].astype(bool) if "payable" in decisions else False
    return (decisions["decision"] == "held") | ((decisions["decision"] == "approved") & still)


def payee_type(subsidy_type: pd.Series) -> pd.Series:
    """Who is paid: the institution for R7 training subsidies (四(三)), the person for all others."""
    return pd.Series(np.where(subsidy_type == "training_subsidy", "institution", "person"), index=subsidy_type.index)


def _not_held(frame: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The rows of frame whose claim is not waiting: a held or publicised claim's ledger lines stand untouched."""
    held = decisions.loc[waiting(decisions), CLAIM_KEY]
    if held.empty:
        return frame
    m = frame.merge(held.assign(_held=True), on=CLAIM_KEY, how="left")
    return frame.loc[~m["_held"].fillna(False).astype(bool).to_numpy()]


def plan_postings(decisions: pd.DataFrame, state: pd.DataFrame, posted_on: dt.date, run_id: str) -> pd.DataFrame:
    """The lines that bring every claim's ledger sum to what it is owed now (none if already equal); held
    claims and claims still in publicity get none, whatever the ledger holds for them (P3)."""
    owed = decisions.loc[(decisions["decision"] == "approved") & ~waiting(decisions)]
    m = _not_held(state, decisions).merge(owed, on=CLAIM_KEY, how="outer")
    m["owed"] = m["amount_fen"].fillna(0).astype("int64")
    has_active = m["active_id"].notna()
    amount_changed = (m["active_amount"].astype("Int64") != m["owed"]).fillna(True).astype(bool)
    dept_changed = (m["active_department_code"].astype("string") != m["department_code"].astype("string"))
    reverse = has_active & (amount_changed | dept_changed.fillna(True).astype(bool))
    pay = (m["owed"] > 0) & (~has_active | reverse)
    n = m["n_lines"].fillna(0).astype("int64")

    keep = [a for a in LINE_ATTRS if a not in CLAIM_KEY]
    rev = m.loc[reverse, [*CLAIM_KEY, "active_id", "active_amount", *[f"active_{a}" for a in keep]]]
    rev = rev.rename(columns={f"active_{a}": a for a in keep})
    rev = rev.assign(entry_type="reversal", reverses_payout_id=rev["active_id"],
                     amount_fen=-rev["active_amount"].astype("int64"), ordinal=n[reverse])
    ends = m["publicity_end"] if "publicity_end" in m else pd.Series(pd.NaT, index=m.index)
    new = m.loc[pay, [*CLAIM_KEY, *keep, "owed"]].rename(columns={"owed": "amount_fen"})
    new = new.assign(entry_type="payout", reverses_payout_id=pd.NA, publicity_end=ends[pay],
                     ordinal=n[pay] + reverse[pay].astype("int64"))
    lines = pd.concat([rev.drop(columns=["active_id", "active_amount"]), new], ignore_index=True)
    # Reversals first, then payouts, each in claim order: a stable, replayable posting order.
    lines["_kind"] = np.where(lines["entry_type"] == "reversal", 0, 1)
    lines = lines.sort_values(["_kind", *CLAIM_KEY], kind="stable").drop(columns="_kind")
    lines["payout_id"] = [payout_id(s, r, p, int(o)) for s, r, p, o in
                          zip(lines["subsidy_type"], lines["reference"], lines["person_id"], lines["ordinal"],
                              strict=True)]
    lines["posted_on"] = pd.Timestamp(posted_on)
    lines["payee_type"] = payee_type(lines["subsidy_type"])
    lines["run_id"] = run_id
    return lines.drop(columns="ordinal").reset_index(drop=True)


def check_claim_sums(conn, decisions: pd.DataFrame, subsidy_types: list[str]) -> None:
    """Invariant: for every claim of these subsidy types, the ledger sum equals the amount owed (held claims and
    claims in publicity: whatever it was, untouched)."""
    state = _not_held(claim_state(conn, subsidy_types), decisions)
    owed = decisions.loc[(decisions["decision"] == "approved") & ~waiting(decisions), [*CLAIM_KEY, "amount_fen"]]
    m = state[[*CLAIM_KEY, "net_fen"]].merge(owed, on=CLAIM_KEY, how="outer")
    bad = m.loc[m["net_fen"].fillna(0).astype("int64") != m["amount_fen"].fillna(0).astype("int64")]
    if len(bad):
        raise LedgerInvariantError(f"{len(bad)} claim(s) whose ledger sum differs from what is owed, "
                                   f"e.g. {bad.iloc[0][['subsidy_type', 'reference']].tolist()}")


def append(conn, lines: pd.DataFrame, decisions: pd.DataFrame, subsidy_types: list[str]) -> None:
    """Append planned lines inside the caller's transaction and check the invariant against the decisions."""
    insert_frame(conn, ledger_lines, lines)
    check_claim_sums(conn, decisions, subsidy_types)


def post(conn, decisions: pd.DataFrame, subsidy_types: list[str], posted_on: dt.date, run_id: str) -> pd.DataFrame:
    """Append the difference to the ledger inside the caller's transaction and check the invariant."""
    lines = plan_postings(decisions, claim_state(conn, subsidy_types), posted_on, run_id)
    append(conn, lines, decisions, subsidy_types)
    return lines


def lines_posted_on(conn, posted_on: dt.date) -> pd.DataFrame:
    """Every ledger line posted on a date, in posting order."""
    lines = read_frame(conn, ledger_lines, ledger_lines.c.posted_on == sa.literal(posted_on, sa.Date))
    return lines.sort_values("seq").reset_index(drop=True)
