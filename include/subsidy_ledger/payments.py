"""Payment (P3): instructions to the payees' accounts, the bank's results, recoveries, and the reconciliation.

Every payout line the ledger holds and has not reversed is owed to its payee. It is *waiting* until an
account is known (a person's `payee_accounts` row valid on the night; for R7 the institution's account in
`training_institutions`), then *instructed* (in transit) until `payment_results` reports it *paid* or
*failed*. A failed payout is instructed again once the payee's account differs from the one that failed, and
not before. A reversal of a paid payout makes a *recovery* owed back (追回) until a paid result for the
recovery's id settles it. Per department and fund, owed = paid + in transit + waiting on every night.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd

from . import ledger
from .contract import HASH_COL, ROW_COL

PAYMENT, RECOVERY = "payment", "recovery"
WAITING_ACCOUNT, IN_TRANSIT, PAID, FAILED = "waiting_account", "in_transit", "paid", "failed"
CANCELLED, IN_TRANSIT_REVERSED, RECOVERY_OWED, RECOVERED = ("cancelled", "in_transit_reversed", "recovery_owed",
                                                           "recovered")
ACTIVE_STATES = (WAITING_ACCOUNT, IN_TRANSIT, PAID, FAILED)
INSTRUCTION_COLUMNS = ["instruction_id", "kind", "payout_id", "reversal_id", "attempt", "department_code", "fund",
                       "payee_type", "payee_id", "payee_name", "bank_name", "account_no", "amount_fen",
                       "instructed_on", "account_source", "run_id"]
RECONCILIATION_COLUMNS = ["department_code", "fund", "owed_fen", "paid_fen", "in_transit_fen", "waiting_fen",
                          "recoveries_owed_fen", "reversed_in_transit_fen", "recovered_fen", "balanced"]


class PaymentReconciliationError(RuntimeError):
    """Owed is not paid + in transit + waiting for some department and fund: nothing of the night is kept."""


def instruction_id(payout_id: str, attempt: int) -> str:
    """Deterministic id of the attempt-th instruction for a payout (0 first): reruns never issue twice."""
    return "PI" + hashlib.sha256(f"{payout_id}|{attempt}".encode()).hexdigest()[:22].upper()


def recovery_id(payout_id: str) -> str:
    """Deterministic id of the recovery of a paid payout that was reversed."""
    return "RC" + hashlib.sha256(f"{payout_id}|recovery".encode()).hexdigest()[:22].upper()


def _valid_on(frame: pd.DataFrame, start: str, end: str, as_of: dt.date) -> pd.DataFrame:
    day = pd.Timestamp(as_of)
    return frame.loc[(frame[start] <= day) & (frame[end].isna() | (frame[end] >= day))]


def person_accounts(payee_accounts: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Each person's account valid on the night (the latest-starting where several are)."""
    a = _valid_on(payee_accounts, "valid_from", "valid_to", as_of).sort_values("valid_from", kind="stable")
    a = a.groupby("person_id", sort=False).tail(1)
    return pd.DataFrame({"payee_id": a["person_id"].astype("string"), "payee_name": a["name"].astype("string"),
                         "bank_name": a["bank_name"].astype("string"), "account_no": a["account_no"].astype("string"),
                         "account_source": "payee_accounts:" + a[ROW_COL].astype("int64").astype(str)})


def institution_accounts(institutions: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Each institution's account: its latest qualification filed by the night that names one (an institution
    whose qualification lapsed is still paid for the classes it ran)."""
    a = institutions.loc[institutions["account_no"].notna() & (institutions["qualified_from"] <= pd.Timestamp(as_of))]
    a = a.sort_values("qualified_from", kind="stable").groupby("institution_credit_code", sort=False).tail(1)
    return pd.DataFrame({"payee_id": a["institution_credit_code"].astype("string"),
                         "payee_name": a["institution_name"].astype("string"),
                         "bank_name": a["bank_name"].astype("string"), "account_no": a["account_no"].astype("string"),
                         "account_source": "training_institutions:" + a[ROW_COL].astype("int64").astype(str)})


def payees(payouts: pd.DataFrame, classes: pd.DataFrame) -> pd.Series:
    """Who each payout line is paid to: the person, or for R7 the institution of the line's class."""
    kind = ledger.payee_type(payouts["subsidy_type"])
    inst = payouts[["reference"]].merge(classes[["class_id", "institution_credit_code"]].drop_duplicates("class_id"),
                                        left_on="reference", right_on="class_id", how="left")["institution_credit_code"]
    return pd.Series(np.where(kind == "institution", inst.astype("string").to_numpy(),
                              payouts["person_id"].astype("string").to_numpy()), index=payouts.index, dtype="string")


def states(lines: pd.DataFrame, instructions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per payout line: whether it is still active, its latest payment instruction and result, its
    recovery, and its state."""
    payouts = lines.loc[lines["entry_type"] == "payout"].copy()
    reversals = lines.loc[lines["entry_type"] == "reversal", ["reverses_payout_id", "payout_id"]].rename(
        columns={"reverses_payout_id": "payout_id", "payout_id": "reversal_id"})
    payouts = payouts.merge(reversals, on="payout_id", how="left")
    payouts["active"] = payouts["reversal_id"].isna()
    outs = outcomes[["instruction_id", "result", "result_date", "failure_reason"]]
    pay = instructions.loc[instructions["kind"] == PAYMENT].sort_values(["payout_id", "attempt"], kind="stable")
    last = pay.groupby("payout_id", sort=False).tail(1)[
        ["payout_id", "instruction_id", "attempt", "instructed_on", "bank_name", "account_no", "payee_id",
         "payee_name"]].merge(outs, on="instruction_id", how="left")
    rec = instructions.loc[instructions["kind"] == RECOVERY, ["payout_id", "instruction_id"]].rename(
        columns={"instruction_id": "recovery_id"}).merge(
        outs[["instruction_id", "result"]].rename(columns={"instruction_id": "recovery_id",
                                                           "result": "recovery_result"}), on="recovery_id", how="left")
    s = payouts.merge(last, on="payout_id", how="left").merge(rec, on="payout_id", how="left")
    instructed, result = s["instruction_id"].notna(), s["result"].astype("string")
    # lines posted before payments existed (migration 0012: no payee_type) were paid by the departments by hand
    paid = (result == PAID).fillna(False) | (~instructed & s["payee_type"].isna())
    active = s["active"].to_numpy(dtype=bool)
    recovered = (s["recovery_result"] == PAID).fillna(False).to_numpy(dtype=bool)
    conditions = [
        active & paid, active & ~instructed, active & instructed & result.isna(),
        active & (result == FAILED).fillna(False),
        ~active & instructed & result.isna(), ~active & paid & recovered, ~active & paid & ~recovered,
    ]
    choices = [PAID, WAITING_ACCOUNT, IN_TRANSIT, FAILED, IN_TRANSIT_REVERSED, RECOVERED, RECOVERY_OWED]
    s["state"] = np.select([np.asarray(c, dtype=bool) for c in conditions], choices, default=CANCELLED)
    return s


def plan_instructions(st: pd.DataFrame, classes: pd.DataFrame, persons: pd.DataFrame, institutions: pd.DataFrame,
                      as_of: dt.date, run_id: str) -> pd.DataFrame:
    """Tonight's new instructions: a first one for each waiting payout whose payee has an account, another for a
    failed one whose payee's account has changed, and a recovery record for each reversed paid payout."""
    cols = ["payout_id", "department_code", "fund", "amount_fen", "subsidy_type", "reference", "person_id"]
    s = st.assign(payee=payees(st, classes), kind=ledger.payee_type(st["subsidy_type"]))
    acct = pd.concat([persons.assign(kind="person"), institutions.assign(kind="institution")], ignore_index=True)
    m = s[[*cols, "payee", "kind", "state", "attempt", "bank_name", "account_no"]].rename(
        columns={"bank_name": "old_bank", "account_no": "old_account"}).merge(
        acct, left_on=["payee", "kind"], right_on=["payee_id", "kind"], how="left")
    has = m["account_no"].notna()
    changed = (m["account_no"].astype("string") != m["old_account"].astype("string")).fillna(True) | \
        (m["bank_name"].astype("string") != m["old_bank"].astype("string")).fillna(True)
    first = (m["state"] == WAITING_ACCOUNT) & has
    again = (m["state"] == FAILED) & has & changed
    new = m.loc[first | again].copy()
    new["attempt"] = np.where(first[first | again], 0, new["attempt"].fillna(-1).astype("int64") + 1)
    new["instruction_id"] = [instruction_id(p, int(a)) for p, a in zip(new["payout_id"], new["attempt"], strict=True)]
    new = new.assign(kind=PAYMENT, reversal_id=pd.NA, payee_type=ledger.payee_type(new["subsidy_type"]))

    owed = st.loc[(st["state"] == RECOVERY_OWED) & st["recovery_id"].isna()]
    rec = owed.assign(instruction_id=[recovery_id(p) for p in owed["payout_id"]], kind=RECOVERY, attempt=0,
                      payee_type=ledger.payee_type(owed["subsidy_type"]), account_source=pd.NA,
                      payee_id=owed["payee_id"].astype("string").fillna(payees(owed, classes)).fillna(
                          owed["person_id"].astype("string")))
    out = pd.concat([new, rec], ignore_index=True).assign(instructed_on=pd.Timestamp(as_of), run_id=run_id)
    return out.reindex(columns=INSTRUCTION_COLUMNS).sort_values(["kind", "instruction_id"]).reset_index(drop=True)


def reconcile(lines: pd.DataFrame, st: pd.DataFrame) -> pd.DataFrame:
    """Per department and fund: owed (the ledger's net), and the payouts' money by state; balanced when
    owed = paid + in transit + waiting (waiting: no account yet, or failed and not yet re-instructed)."""
    key = ["department_code", "fund"]
    if lines.empty:
        return pd.DataFrame(columns=RECONCILIATION_COLUMNS)
    owed = lines.groupby(key)["amount_fen"].sum().rename("owed_fen")
    by_state = st.pivot_table(index=key, columns="state", values="amount_fen", aggfunc="sum", fill_value=0)
    r = pd.concat([owed, by_state], axis=1).fillna(0)
    for c in (WAITING_ACCOUNT, IN_TRANSIT, PAID, FAILED, RECOVERY_OWED, IN_TRANSIT_REVERSED, RECOVERED):
        if c not in r:
            r[c] = 0
    out = pd.DataFrame({"owed_fen": r["owed_fen"], "paid_fen": r[PAID], "in_transit_fen": r[IN_TRANSIT],
                        "waiting_fen": r[WAITING_ACCOUNT] + r[FAILED], "recoveries_owed_fen": r[RECOVERY_OWED],
                        "reversed_in_transit_fen": r[IN_TRANSIT_REVERSED], "recovered_fen": r[RECOVERED]}
                       ).astype("int64").reset_index()
    out["balanced"] = out["owed_fen"] == out["paid_fen"] + out["in_transit_fen"] + out["waiting_fen"]
    return out.reindex(columns=RECONCILIATION_COLUMNS).sort_values(key).reset_index(drop=True)


def check(recon: pd.DataFrame) -> None:
    """Refuse the night if any department and fund does not balance."""
    bad = recon.loc[~recon["balanced"].astype(bool)]
    if len(bad):
        r = bad.iloc[0]
        raise PaymentReconciliationError(
            f"payments do not reconcile for {len(bad)} department/fund pair(s), e.g. {r['department_code']} "
            f"{r['fund']}: owed {r['owed_fen']} fen != paid {r['paid_fen']} + in transit {r['in_transit_fen']} "
            f"+ waiting {r['waiting_fen']}")


def new_outcomes(results: pd.DataFrame, recorded: pd.DataFrame, as_of: dt.date, run_id: str) -> pd.DataFrame:
    """The bank results to record tonight: those dated by the night for instructions with none recorded yet (the
    first result reported for an instruction is the one kept). A failed recovery is not recorded: the money is
    still owed back, and the recovery's later success must still settle it."""
    failed_recovery = results["instruction_id"].str.startswith("RC") & (results["result"] == FAILED)
    r = results.loc[(results["result_date"] <= pd.Timestamp(as_of)) & ~failed_recovery.fillna(False)
                    & ~results["instruction_id"].isin(recorded["instruction_id"])]
    return pd.DataFrame({"instruction_id": r["instruction_id"], "payout_id": r["payout_id"], "result": r["result"],
                         "result_date": r["result_date"], "failure_reason": r["failure_reason"],
                         "recorded_on": pd.Timestamp(as_of), "run_id": run_id, "source_row": r[ROW_COL],
                         "row_hash": r[HASH_COL]}).reset_index(drop=True)


def unknown_results(results: pd.DataFrame, instructions: pd.DataFrame) -> pd.Series:
    """Bank results that name no instruction the warehouse issued, or the wrong payout for it."""
    issued = instructions.set_index("instruction_id")["payout_id"].astype("string")
    known = results["instruction_id"].astype("string").map(issued)
    same = (known == results["payout_id"].astype("string")).fillna(False).astype(bool)
    return ~same
