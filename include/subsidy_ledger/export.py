"""Export: the extracts of CONTRACT.md under <out>/<as-of>/ (CSV with BOM for Excel, XLSX, masked ids)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from . import assessment_report, csv_text, labels, partition, workbooks, workstore
from .assessment import Assessment
from .contract import CLAIM_KEY as CLAIM
from .contract import mask_account_no, mask_ids_in_text, mask_name, mask_resident_id, person_codes
from .identifiers import each_distinct
from .ledger import payee_type
from .money import fen_to_yuan_text, rate_units_to_text
from .workbooks import DATE, INT, MONEY, RATE, Col

LEDGER_COLUMNS = ["payout_id", "entry_type", "reverses_payout_id", "posted_on", "department_code", "fund",
                  "subsidy_type", "payee_type", "person_id_masked", "name", "reference", "occupation_code", "level",
                  "amount", "uplift_rate", "rule_id", "policy_version", "publicity_end", "run_id",
                  # appended after CONTRACT.md's columns (issue 17): who, what and why, for people
                  "person_code", "occupation_name", "event_date", "reversal_reason"]
DECISION_COLUMNS = ["reference", "subsidy_type", "person_id_masked", "name", "decision", "reason_code", "held_rows",
                    "amount", "rule_id", "department_code",
                    "person_code", "occupation_code", "occupation_name", "level", "event_date"]
SUMMARY_COLUMNS = ["posted_on", "department_code", "fund", "subsidy_type", "payout_lines", "reversal_lines",
                   "trainees", "amount", "payout_amount", "reversal_amount"]
FUNDING_COLUMNS = ["department_code", "fund", "year", "filed_projects", "filed_trainees", "filed_budget",
                   "approved_claims", "approved", "held_over_budget", "posted", "paid"]
SUPERVISION_COLUMNS = ["signal", "department_code", "class_id", "institution_credit_code", "institution_name",
                       "person_id_masked", "name", "detail"]
RECONCILIATION_COLUMNS = ["registry", "file_name", "present", "encoding", "sha256", "rows_in", "accepted",
                          "quarantined", "gx_success", "problem", "quarantined_share", "gate"]
QUARANTINE_COLUMNS = ["registry", "row_number", "key", "reasons", "columns", "values_masked"]
CITY_OVERLAP_COLUMNS = ["department_code", "reference", "person_id_masked", "name", "occupation_code", "level",
                        "district_amount", "city_certificate_no", "city_paid_on", "city_amount"]
PUBLICITY_COLUMNS = ["department_code", "subsidy_type", "reference", "name_masked", "person_id_masked",
                     "occupation_code", "level", "amount", "publicity_start", "publicity_end", "person_code",
                     "occupation_name", "fund"]
PAYMENTS_COLUMNS = ["payout_id", "posted_on", "department_code", "fund", "subsidy_type", "reference", "payee_type",
                    "person_id_masked", "name", "amount", "state", "instruction_id", "attempt", "instructed_on",
                    "payee_name", "account_no_masked", "result_date", "failure_reason", "reversal_id", "recovery_id"]
PAYMENTS_RECONCILIATION_COLUMNS = ["department_code", "fund", "owed", "paid", "in_transit", "waiting",
                                   "recoveries_owed", "reversed_in_transit", "recovered", "balanced"]
BANK_COLUMNS = ["instruction_id", "payout_id", "payee_name", "payee_id", "bank_name", "account_no", "amount",
                "purpose"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# the decisions' columns the extracts read (claim_facts, decisions_extract, funding_extract); export's stage
# reads no others: decisions_extract takes a column it lacks as empty, so a use added here must be added there
DECISION_READS = ("subsidy_type", "reference", "person_id", "name", "decision", "reason_code", "held_rows",
                  "amount_fen", "rule_id", "department_code", "fund", "occupation_code", "level", "event_date")


@dataclass(frozen=True)
class Context:
    """What the extracts need beyond the frames: the person-code key, occupation names, the run."""

    person_key: bytes = b""
    occupations: dict = field(default_factory=dict)  # occupation_code -> name (certificates registry)
    run_id: str = ""


def _codes(ctx: Context, person_id: pd.Series) -> pd.Series:
    # no memo of codes across the extracts: at 10,000,000 persons it would hold gigabytes in export's process
    if not ctx.person_key:
        return pd.Series(pd.NA, index=person_id.index, dtype="string")
    return person_codes(person_id, ctx.person_key)


def _occupation_names(ctx: Context, codes: pd.Series) -> pd.Series:
    return codes.astype("string").map(ctx.occupations).astype("string")


def claim_facts(lines: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """For each line (same index): the claim's event date tonight and, for a reversal, why: the rejection or
    hold reason, `repriced` (still approved, for another amount or department) or `claim_gone`."""
    d = decisions[[*CLAIM, "decision", "reason_code", "event_date"]].drop_duplicates(CLAIM)
    m = lines[CLAIM].reset_index().merge(d, on=CLAIM, how="left").set_index("index").reindex(lines.index)
    why = m["reason_code"].astype("string").where(m["decision"].isin(["rejected", "held"]))
    why = why.mask(m["decision"].eq("approved"), "repriced").mask(m["decision"].isna(), "claim_gone")
    return pd.DataFrame({"event_date": m["event_date"],
                         "reversal_reason": why.where(lines["entry_type"].eq("reversal"))}, index=lines.index)


def neutralise(text: pd.Series) -> pd.Series:
    """Prefix a quote to cells that a spreadsheet would run as a formula (=, +, -, @ ...)."""
    s = text.astype("string")
    risky = s.str.startswith(_FORMULA_START).fillna(False)
    return s.where(~risky, "'" + s)


def _date_text(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.strftime("%Y-%m-%d").astype("string")


def ledger_extract(lines: pd.DataFrame, decisions: pd.DataFrame | None = None,
                   ctx: Context = Context()) -> pd.DataFrame:  # noqa: B008 (a frozen, empty default)
    """Ledger lines in the contract's columns, identity numbers masked, then the person code, occupation name,
    event date and a reversal's reason."""
    facts = claim_facts(lines, decisions if decisions is not None else pd.DataFrame(
        columns=[*CLAIM, "decision", "reason_code", "event_date"]))
    kind = lines["payee_type"].astype("string").fillna(payee_type(lines["subsidy_type"])) if "payee_type" in lines \
        else payee_type(lines["subsidy_type"])
    return pd.DataFrame({
        "payout_id": lines["payout_id"], "entry_type": lines["entry_type"],
        "reverses_payout_id": lines["reverses_payout_id"], "posted_on": _date_text(lines["posted_on"]),
        "department_code": lines["department_code"], "fund": lines["fund"], "subsidy_type": lines["subsidy_type"],
        "payee_type": kind,
        "person_id_masked": mask_resident_id(lines["person_id"]), "name": neutralise(lines["name"]),
        "reference": neutralise(lines["reference"]), "occupation_code": neutralise(lines["occupation_code"]),
        "level": lines["level"].astype("Int64"), "amount": fen_to_yuan_text(lines["amount_fen"]),
        "uplift_rate": rate_units_to_text(lines["uplift_units"]), "rule_id": lines["rule_id"],
        "policy_version": lines["policy_version"],
        "publicity_end": _date_text(lines["publicity_end"]) if "publicity_end" in lines else pd.NA,
        "run_id": lines["run_id"], "person_code": _codes(ctx, lines["person_id"]),
        "occupation_name": neutralise(_occupation_names(ctx, lines["occupation_code"])),
        "event_date": _date_text(facts["event_date"]), "reversal_reason": facts["reversal_reason"],
    }, columns=LEDGER_COLUMNS)


def decisions_extract(d: pd.DataFrame, ctx: Context = Context()) -> pd.DataFrame:  # noqa: B008
    """Decisions in the contract's columns, identity numbers masked, then person code, occupation and date."""
    d = d.sort_values(["subsidy_type", "reference", "person_id"], kind="stable")
    return pd.DataFrame({
        "reference": neutralise(d["reference"]), "subsidy_type": d["subsidy_type"],
        "person_id_masked": mask_resident_id(d["person_id"]), "name": neutralise(d["name"]),
        "decision": d["decision"], "reason_code": d["reason_code"],
        "held_rows": d.get("held_rows", pd.NA), "amount": fen_to_yuan_text(d["amount_fen"]),
        "rule_id": d["rule_id"], "department_code": d["department_code"],
        "person_code": _codes(ctx, d["person_id"]), "occupation_code": neutralise(d.get("occupation_code", pd.Series(
            pd.NA, index=d.index, dtype="string"))),
        "occupation_name": neutralise(_occupation_names(ctx, d.get("occupation_code", pd.Series(
            pd.NA, index=d.index, dtype="string")))),
        "level": d.get("level", pd.Series(pd.NA, index=d.index)).astype("Int64"),
        "event_date": _date_text(d.get("event_date", pd.Series(pd.NaT, index=d.index))),
    }, columns=DECISION_COLUMNS)


def summary_extract(lines: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Totals posted on the as-of date by department, fund and subsidy type."""
    if lines.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    payout = lines["entry_type"].eq("payout")
    g = lines.assign(p=payout, r=lines["entry_type"].eq("reversal"), paid_person=lines["person_id"].where(payout),
                     payout_fen=lines["amount_fen"].where(payout, 0),
                     reversal_fen=lines["amount_fen"].where(~payout, 0)
                     ).groupby(["department_code", "fund", "subsidy_type"], sort=True)
    # trainees: the distinct people a payout was posted for tonight (根据备案的培训人数、补贴金额汇总统计)
    s = pd.DataFrame({"payout_lines": g["p"].sum(), "reversal_lines": g["r"].sum(),
                      "trainees": g["paid_person"].nunique(), "amount_fen": g["amount_fen"].sum(),
                      "payout_fen": g["payout_fen"].sum(), "reversal_fen": g["reversal_fen"].sum()}).reset_index()
    s.insert(0, "posted_on", as_of.isoformat())
    for c in ("amount", "payout_amount", "reversal_amount"):
        s[c] = fen_to_yuan_text(s[{"amount": "amount_fen", "payout_amount": "payout_fen",
                                   "reversal_amount": "reversal_fen"}[c]])
    return s[SUMMARY_COLUMNS]


def funding_extract(projects: pd.DataFrame, decisions: pd.DataFrame, state: pd.DataFrame,
                    pay_states: pd.DataFrame | None = None) -> pd.DataFrame:
    """申请区财政局核拨资金: per department, fund and year, the filed projects' trainees and budgets (year of
    filing), the claims approved tonight and held over budget (year of the claim's event date), what the
    ledger holds for them (posted, net) and what the bank paid on them (P3: payouts whose result is paid and
    that stand, by the year of the claim's event)."""
    keys = ["department_code", "fund", "year"]
    year = pd.to_datetime(decisions["event_date"]).dt.year.astype("Int64")
    d = decisions.assign(year=year)
    approved = d.loc[d["decision"] == "approved"].groupby(keys).agg(
        approved_claims=("amount_fen", "size"), approved_fen=("amount_fen", "sum"))
    over = d.loc[d["reason_code"] == "over_filed_budget"].groupby(keys).size().rename("held_over_budget")
    filed = projects.assign(fund="skills_upgrade_account", year=pd.to_datetime(projects["filed_on"]).dt.year.astype(
        "Int64")).groupby(keys).agg(filed_projects=("project_id", "size"), filed_trainees=("planned_trainees", "sum"),
                                   filed_budget_fen=("budget", "sum"))
    held = state.loc[state["net_fen"].astype("int64") != 0].merge(
        d[["subsidy_type", "reference", "person_id", "year"]], on=["subsidy_type", "reference", "person_id"],
        how="left")
    posted = held.rename(columns={"active_department_code": "department_code", "active_fund": "fund"}).groupby(
        keys, dropna=False)["net_fen"].sum().rename("posted_fen")
    parts = [filed, approved, over, posted]
    if pay_states is not None and len(pay_states):
        bank = pay_states.loc[pay_states["state"] == "paid"].merge(
            d[["subsidy_type", "reference", "person_id", "year"]], on=["subsidy_type", "reference", "person_id"],
            how="left")
        parts.append(bank.groupby(keys, dropna=False)["amount_fen"].sum().rename("paid_fen"))
    f = pd.concat(parts, axis=1).reset_index()
    if f.empty:
        return pd.DataFrame(columns=FUNDING_COLUMNS)
    for c in ("filed_projects", "filed_trainees", "approved_claims", "held_over_budget"):
        f[c] = f[c].fillna(0).astype("int64")
    for c in ("filed_budget", "approved", "posted"):
        f[c] = fen_to_yuan_text(f[f"{c}_fen"].fillna(0).astype("int64"))
    f["paid"] = fen_to_yuan_text(f["paid_fen"].fillna(0).astype("int64")) if "paid_fen" in f else "0.00"
    return f.sort_values(keys, kind="stable")[FUNDING_COLUMNS]


def publicity_extract(records: pd.DataFrame, ctx: Context = Context()) -> pd.DataFrame:  # noqa: B008
    """公示名单 (P1): the claims entering publicity, name and identity number masked."""
    r = records.sort_values(["department_code", "subsidy_type", "reference", "person_id"], kind="stable")
    return pd.DataFrame({
        "department_code": r["department_code"], "subsidy_type": r["subsidy_type"],
        "reference": neutralise(r["reference"]), "name_masked": neutralise(mask_name(r["name"])),
        "person_id_masked": mask_resident_id(r["person_id"]), "occupation_code": neutralise(r["occupation_code"]),
        "level": r["level"].astype("Int64"), "amount": fen_to_yuan_text(r["amount_fen"]),
        "publicity_start": _date_text(r["publicity_start"]), "publicity_end": _date_text(r["publicity_end"]),
        "person_code": _codes(ctx, r["person_id"]),
        "occupation_name": neutralise(_occupation_names(ctx, r["occupation_code"])),
        "fund": r.get("fund", pd.NA),
    }, columns=PUBLICITY_COLUMNS)


def payments_extract(st: pd.DataFrame, ctx: Context = Context()) -> pd.DataFrame:  # noqa: B008
    """Each payout line and its payment state (P3), identity and account numbers masked."""
    s = st.sort_values(["posted_on", "payout_id"], kind="stable")
    kind = s["payee_type"].astype("string").fillna(payee_type(s["subsidy_type"])) if "payee_type" in s else \
        payee_type(s["subsidy_type"])
    return pd.DataFrame({
        "payout_id": s["payout_id"], "posted_on": _date_text(s["posted_on"]),
        "department_code": s["department_code"], "fund": s["fund"], "subsidy_type": s["subsidy_type"],
        "reference": neutralise(s["reference"]), "payee_type": kind,
        "person_id_masked": mask_resident_id(s["person_id"]), "name": neutralise(s["name"]),
        "amount": fen_to_yuan_text(s["amount_fen"]), "state": s["state"], "instruction_id": s["instruction_id"],
        "attempt": s["attempt"].astype("Int64"), "instructed_on": _date_text(s["instructed_on"]),
        "payee_name": neutralise(s["payee_name"]), "account_no_masked": mask_account_no(s["account_no"]),
        "result_date": _date_text(s["result_date"]), "failure_reason": neutralise(s["failure_reason"]),
        "reversal_id": s["reversal_id"], "recovery_id": s["recovery_id"], "person_code": _codes(ctx, s["person_id"]),
    }, columns=PAYMENTS_COLUMNS)


def payments_reconciliation_extract(recon: pd.DataFrame) -> pd.DataFrame:
    """Per department and fund: owed = paid + in transit + waiting, and the recoveries, in yuan."""
    out = recon[["department_code", "fund"]].copy()
    for c in PAYMENTS_RECONCILIATION_COLUMNS[2:-1]:
        out[c] = fen_to_yuan_text(recon[f"{c}_fen"].astype("int64"))
    out["balanced"] = recon["balanced"].map({True: "true", False: "false"})
    return out[PAYMENTS_RECONCILIATION_COLUMNS]


def bank_instructions(instr: pd.DataFrame) -> pd.DataFrame:
    """The bank's file (full names, numbers and accounts: written only under <out>/payments, mode 0600)."""
    i = instr.sort_values("instruction_id", kind="stable")
    return pd.DataFrame({
        "instruction_id": i["instruction_id"], "payout_id": i["payout_id"], "payee_name": neutralise(i["payee_name"]),
        "payee_id": i["payee_id"], "bank_name": neutralise(i["bank_name"]), "account_no": i["account_no"],
        "amount": fen_to_yuan_text(i["amount_fen"]), "purpose": labels.series("subsidy_types", i["subsidy_type"]) + " "
        + i["reference"].astype("string"),
    }, columns=BANK_COLUMNS)


def write_bank_files(out: Path, as_of: dt.date, instr: pd.DataFrame) -> Path:
    """Write <out>/payments/<as-of>/<DEPT>.csv, one per department instructed tonight, all at once, each file
    mode 0600 in folders mode 0700 (they carry full identity and account numbers)."""
    base = Path(out) / "payments"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    final = base / as_of.isoformat()
    with published_folder(final) as root:
        os.chmod(root, 0o700)
        for dept, rows in instr.groupby("department_code", sort=True):
            path = root / f"{dept}.csv"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
                bank_instructions(rows).to_csv(fh, index=False, lineterminator="\r\n")
    return final


def supervision_extract(signals: pd.DataFrame) -> pd.DataFrame:
    """资金监管 signals for auditors, identity numbers masked."""
    return pd.DataFrame({
        "signal": signals["signal"], "department_code": signals["department_code"],
        "class_id": neutralise(signals["class_id"]), "institution_credit_code": signals["institution_credit_code"],
        "institution_name": neutralise(signals["institution_name"]),
        "person_id_masked": mask_resident_id(signals["person_id"]), "name": neutralise(signals["name"]),
        "detail": neutralise(mask_ids_in_text(signals["detail"])),
    }, columns=SUPERVISION_COLUMNS)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV for Excel: UTF-8 with BOM, empty cells for missing values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    csv_text.write(frame, path)


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0


@contextlib.contextmanager
def published_folder(final: Path):
    """Yield a hidden folder beside `final` to write into; when the block succeeds, put it in final's place.

    Readers see the previous complete folder or the new complete one, never a half-written file: the new
    folder is swapped in with one atomic exchange where the system offers it, else with two renames (a
    moment with no folder, never a partial one). On any error the new folder is removed and the old one
    stays. Leftovers of a killed run are removed first (callers hold the night's export lock).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{final.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    new = final.parent / f".{final.name}.new-{os.getpid()}"
    new.mkdir()
    try:
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists() and _exchange(new, final):
        shutil.rmtree(new, ignore_errors=True)  # it now holds the previous folder
        return
    if final.exists():
        os.rename(final, old)
    os.rename(new, final)
    shutil.rmtree(old, ignore_errors=True)


def city_overlaps_extract(o: pd.DataFrame) -> pd.DataFrame:
    """R1 check 6 pairs for HRSS to settle with the city: the district's payout and the city's, masked."""
    o = o.sort_values(["reference", "person_id", "city_certificate_no"], kind="stable")
    return pd.DataFrame({
        "department_code": o["department_code"], "reference": neutralise(o["reference"]),
        "person_id_masked": mask_resident_id(o["person_id"]), "name": neutralise(o["name"]),
        "occupation_code": neutralise(o["occupation_code"]), "level": o["level"].astype("Int64"),
        "district_amount": fen_to_yuan_text(o["district_amount_fen"]),
        "city_certificate_no": neutralise(o["city_certificate_no"]), "city_paid_on": _date_text(o["city_paid_on"]),
        "city_amount": fen_to_yuan_text(o["city_amount_fen"].fillna(0)).where(o["city_amount_fen"].notna()),
    }, columns=CITY_OVERLAP_COLUMNS)


# below this many workbook rows in a night, starting a pool costs more than it saves (about 1 s of cells)
POOLED_BOOK_ROWS = 50_000


@dataclass(frozen=True)
class BookJob:
    """One department's workbook: which book, where it goes, and the Parquet file its rows wait in (the rows
    of its CSV, masked as the CSV is; written by the night's process, read by whichever process writes the book)."""

    path: Path
    kind: str  # a key of BOOKS
    department: str
    rows: Path
    n: int
    as_of: dt.date
    run_id: str


def write_extracts(out: Path, as_of: dt.date, departments: list[str], lines: pd.DataFrame,
                   decisions: pd.DataFrame, reconciliation: pd.DataFrame, quarantine: pd.DataFrame,
                   city_overlaps: pd.DataFrame, funding: pd.DataFrame, supervision: pd.DataFrame,
                   publicised: pd.DataFrame | None = None, pay_states: pd.DataFrame | None = None,
                   pay_reconciliation: pd.DataFrame | None = None, ctx: Context = Context(),  # noqa: B008
                   max_quarantine_share: float | None = None, gate_min_rows: int = 0,
                   assessment: Assessment | Callable[[], assessment_report.Rendered] | None = None,
                   processes: int | None = None) -> Path:
    """Write every extract of the run into <out>/<as-of>, all at once (see published_folder); returns it.
    A large night's department workbooks are written by a pool (partition.workers: `processes`, else one per
    core), one file each, while this process writes the CSVs. assessment: A1's figures, or a function that
    gives the report made (made beside, asked for last)."""
    final = Path(out) / as_of.isoformat()
    with published_folder(final) as root:
        extracts = {
            "ledger": ledger_extract(lines, decisions, ctx), "decisions": decisions_extract(decisions, ctx),
            "publicity": publicity_extract(publicised if publicised is not None else pd.DataFrame(
                columns=["department_code", "subsidy_type", "reference", "person_id", "name", "occupation_code",
                         "level", "amount_fen", "publicity_start", "publicity_end"]), ctx),
            "payments": payments_extract(pay_states, ctx) if pay_states is not None and len(pay_states) else
            pd.DataFrame(columns=PAYMENTS_COLUMNS)}
        # each column's distinct values first: a set of a million rows' Python strings cost about a second
        depts = sorted(set(departments) | {d for k in ("ledger", "decisions")
                                           for d in extracts[k]["department_code"].dropna().unique()})
        scratch = root / ".rows"  # inside the folder being written: gone with it on an error, removed below
        jobs = _book_jobs(extracts, depts, root, scratch, as_of, ctx.run_id)
        rows = sum(j.n for j in jobs)
        pool = partition.workers(len(jobs), processes) if rows >= POOLED_BOOK_ROWS else 1
        # the workbooks' cells are most of the time; the CSVs are written here meanwhile, in the time the
        # processes with the smaller workbooks leave a core free
        with partition.meanwhile(_write_book, jobs, processes=pool, lean=True):
            for name in list(extracts):
                frame = extracts.pop(name)  # each night-sized frame goes once its CSVs are written
                for dept in depts:
                    write_csv(frame.loc[frame["department_code"] == dept], root / dept / f"{name}.csv")
            workbooks.write(root / "summary.xlsx", summary_book(as_of, ctx.run_id, lines))
            write_csv(summary_extract(lines, as_of), root / "summary.csv")
            write_csv(reconciliation_extract(reconciliation, max_quarantine_share, gate_min_rows),
                      root / "reconciliation.csv")
            write_csv(quarantine_extract(quarantine), root / "quarantine.csv")
            write_csv(city_overlaps_extract(city_overlaps), root / "city_overlaps.csv")
            write_csv(funding, root / "funding.csv")
            write_csv(supervision_extract(supervision), root / "supervision.csv")
            recon = pay_reconciliation if pay_reconciliation is not None else pd.DataFrame(
                columns=["department_code", "fund"])
            write_csv(payments_reconciliation_extract(recon) if len(recon) else
                      pd.DataFrame(columns=PAYMENTS_RECONCILIATION_COLUMNS), root / "payments_reconciliation.csv")
            if assessment is not None:
                assessment_report.write(root / "assessment", assessment if isinstance(assessment, Assessment)
                                        else assessment(), write_csv)
        shutil.rmtree(scratch)
    return final


def _book_jobs(extracts: dict[str, pd.DataFrame], depts: list[str], root: Path, scratch: Path, as_of: dt.date,
               run_id: str) -> list[BookJob]:
    """Park each department's rows of each book in `scratch`; the jobs, the largest first (so that no process
    is left with a big one at the end)."""
    workstore.make_dirs(scratch)  # even with no book: the folder is removed after the pool
    jobs = []
    for kind in BOOKS:
        frame = extracts[kind]
        for dept in depts:
            mine = frame.loc[frame["department_code"] == dept]
            rows = scratch / f"{kind}-{dept}.parquet"
            workstore.write_frame(rows, mine, seal=None)  # extract rows: masked already
            jobs.append(BookJob(root / dept / f"{kind}.xlsx", kind, dept, rows, len(mine), as_of, run_id))
    return sorted(jobs, key=lambda j: -j.n)


def _write_book(job: BookJob) -> None:
    """Write one department's workbook from its parked rows (in this process or a pool's)."""
    rows = workstore.read_frame(job.rows, seal=None)
    workbooks.write(job.path, BOOKS[job.kind](job.department, job.as_of, job.run_id, rows))


def reconciliation_extract(rec: pd.DataFrame, max_share: float | None = None, min_rows: int = 0) -> pd.DataFrame:
    """Per registry: rows in = accepted + quarantined, the quarantined share, and the data-quality gate's verdict:
    `passed`, `passed_with_quarantine`, or `over_limit_accepted` (above the gate's share, let through by an
    operator). `gx_success` stays GX's own verdict: false whenever a row was quarantined."""
    r = rec.sort_values("registry").copy()
    rows_in = r["rows_in"].astype("int64")
    share = (r["quarantined"].astype("int64") / rows_in.where(rows_in > 0)).astype("float64").fillna(0.0)
    r["quarantined_share"] = share.map(lambda v: f"{v:.4f}")
    over = (share > max_share) & (rows_in >= min_rows) if max_share is not None else pd.Series(False, index=r.index)
    r["gate"] = np.where(over, "over_limit_accepted", np.where(r["quarantined"].astype("int64") > 0,
                                                      "passed_with_quarantine", "passed"))
    return r.reindex(columns=RECONCILIATION_COLUMNS)


def quarantine_extract(quarantine: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows: registry, row, key, reasons, and the columns and values (masked) that failed."""
    q = quarantine.rename(columns={"record_key": "key"}).sort_values(["registry", "row_number"])
    q = q.reindex(columns=[*QUARANTINE_COLUMNS, "person_id"])
    return q.assign(key=neutralise(mask_ids_in_text(q["key"])), reasons=neutralise(q["reasons"]),
                    columns=neutralise(q["columns"]),
                    values_masked=neutralise(mask_ids_in_text(q["values_masked"])))[QUARANTINE_COLUMNS]


LEDGER_BOOK = [  # run_id and the policy version are on the cover; the CSV keeps them per line
    Col("payout_id", "支付编号", width=24), Col("entry_type", "类型", width=5, label="entry_types"),
    Col("reverses_payout_id", "冲销的支付编号", width=24), Col("posted_on", "记账日期", DATE, 10),
    Col("subsidy_type", "补贴类型", width=12, label="subsidy_types"), Col("fund", "资金", width=15, label="funds"),
    Col("payee_type", "收款方", width=8, label="payee_types"), Col("person_code", "人员代码", width=13),
    Col("person_id_masked", "身份证号（脱敏）", width=18), Col("name", "姓名", width=7),
    Col("reference", "证书/协议/班级编号", width=16), Col("occupation_code", "职业代码", width=10),
    Col("occupation_name", "职业名称", width=12), Col("level", "等级", width=12, label="levels"),
    Col("event_date", "发证/开班/学徒年度日期", DATE, 10), Col("amount", "金额（元）", MONEY, 11),
    Col("uplift_rate", "上浮", RATE, 6), Col("rule_id", "规则", width=5),
    Col("reversal_text", "冲销原因", width=30), Col("publicity_end", "公示截止", DATE, 10),
]
DECISIONS_BOOK = [
    Col("reference", "证书/协议/班级编号", width=20), Col("subsidy_type", "补贴类型", width=14, label="subsidy_types"),
    Col("person_code", "人员代码", width=14), Col("person_id_masked", "身份证号（脱敏）", width=21),
    Col("name", "姓名", width=9), Col("occupation_code", "职业代码", width=12),
    Col("occupation_name", "职业名称", width=14), Col("level", "等级", width=13, label="levels"),
    Col("event_date", "发证/开班/学徒年度日期", DATE, 12), Col("decision", "结论", width=9, label="decisions"),
    Col("reason_code", "原因代码", width=28), Col("reason_text", "原因说明（方案条款）", width=44),
    Col("amount", "金额（元）", MONEY, 12), Col("rule_id", "规则", width=6), Col("held_rows", "待更正记录", width=24),
]
PUBLICITY_BOOK = [
    Col("subsidy_type", "补贴类型", width=14, label="subsidy_types"), Col("reference", "证书/协议/班级编号", width=20),
    Col("name_masked", "姓名", width=9), Col("person_id_masked", "身份证号（脱敏）", width=21),
    Col("occupation_code", "职业代码", width=12), Col("occupation_name", "职业名称", width=14),
    Col("level", "等级", width=13, label="levels"), Col("amount", "金额（元）", MONEY, 12),
    Col("publicity_start", "公示开始", DATE, 11), Col("publicity_end", "公示截止", DATE, 11),
]
SUMMARY_BOOK = [
    Col("department_code", "部门", width=16, label="departments"), Col("fund", "资金", width=18, label="funds"),
    Col("payout_lines", "新增支付笔数", INT, 10), Col("payout_amount", "新增支付金额（元）", MONEY, 14),
    Col("reversal_lines", "冲销笔数", INT, 9), Col("reversal_amount", "冲销金额（元）", MONEY, 14),
    Col("amount", "净额（元）", MONEY, 14), Col("trainees", "享受人数", INT, 9),
]


FUND_AND_TYPE = [("fund", "资金 fund", "funds"), ("subsidy_type", "补贴类型 subsidy type", "subsidy_types")]


def _yuan(fen) -> Decimal:
    return Decimal(int(fen)) / 100


def _fen(yuan_text: pd.Series) -> pd.Series:
    """Exact integer fen from the extracts' yuan text (the sums below stay exact); missing is 0."""
    fen = each_distinct(yuan_text.astype("string"), lambda v: int(Decimal(v) * 100), 0, np.int64)
    return pd.Series(fen, index=yuan_text.index, dtype="int64")


def _department(dept: str) -> str:
    return f"{labels.zh('departments', dept) or dept} {dept}"


def ledger_book(dept: str, as_of: dt.date, run_id: str, rows: pd.DataFrame) -> workbooks.Book:
    """明细账: tonight's ledger lines of a department, with the cover, totals and reasons."""
    rows = rows.assign(amount_fen=_fen(rows["amount"]), reversal_text=labels.explain(
        rows["reversal_reason"], rows["rule_id"]))
    pay, rev = rows["entry_type"].eq("payout"), rows["entry_type"].eq("reversal")
    cover = [("部门 department", _department(dept)), ("记账日期 posted on", as_of),
             ("新增支付笔数 new payouts", int(pay.sum())), ("新增支付金额（元）", _yuan(rows["amount_fen"][pay].sum())),
             ("冲销笔数 reversals", int(rev.sum())), ("冲销金额（元）", _yuan(rows["amount_fen"][rev].sum())),
             ("净额（元） net", _yuan(rows["amount_fen"].sum())),
             ("政策版本 policy version", "、".join(sorted(rows["policy_version"].dropna().unique())) or "—"),
             ("运行编号 run", run_id or "—")]
    totals, money = workbooks.totals_by(
        rows.assign(pf=rows["amount_fen"].where(pay, 0), rf=rows["amount_fen"].where(~pay, 0)), FUND_AND_TYPE,
        sums=[("pf", "新增支付金额（元）"), ("rf", "冲销金额（元）"), ("amount_fen", "净额（元） net")],
        counts=[("新增支付笔数 payouts", pay), ("冲销笔数 reversals", rev)])
    return workbooks.Book(f"职业技能提升补贴明细账（{_department(dept)}，{as_of.isoformat()}）", dept, as_of, run_id,
                          cover, LEDGER_BOOK, rows, totals, money, sheet="明细账",
                          notes=["金额为负数的行是冲销；冲销原因见“冲销原因”列与“原因说明”表。"])


def decisions_book(dept: str, as_of: dt.date, run_id: str, rows: pd.DataFrame) -> workbooks.Book:
    """判定结果: every claim of a department decided tonight (approved, rejected, held) and why."""
    rows = rows.assign(amount_fen=_fen(rows["amount"]), reason_text=labels.explain(rows["reason_code"],
                                                                                   rows["rule_id"]))
    ok, no, held = (rows["decision"].eq(k) for k in ("approved", "rejected", "held"))
    cover = [("部门 department", _department(dept)), ("判定日期 as of", as_of),
             ("核准笔数 approved", int(ok.sum())), ("核准金额（元）", _yuan(rows["amount_fen"][ok].sum())),
             ("不予补贴笔数 rejected", int(no.sum())), ("暂缓笔数 held", int(held.sum())),
             ("运行编号 run", run_id or "—")]
    totals, money = workbooks.totals_by(
        rows.assign(approved_fen=rows["amount_fen"].where(ok, 0)),
        [("subsidy_type", "补贴类型 subsidy type", "subsidy_types"), ("decision", "结论 decision", "decisions")],
        sums=[("approved_fen", "核准金额（元） approved")], counts=[("笔数 claims", pd.Series(True, index=rows.index))])
    return workbooks.Book(f"补贴申领判定结果（{_department(dept)}，{as_of.isoformat()}）", dept, as_of, run_id, cover,
                          DECISIONS_BOOK, rows, totals, money, sheet="判定结果",
                          notes=["不予补贴与暂缓的原因及方案条款见“原因说明”表；暂缓的申领在更正或处理后重新判定。"])


def publicity_book(dept: str, as_of: dt.date, run_id: str, rows: pd.DataFrame) -> workbooks.Book:
    """公示名单: the claims of a department entering publicity tonight."""
    rows = rows.assign(amount_fen=_fen(rows["amount"]))
    ends = rows["publicity_end"].dropna()
    cover = [("部门 department", _department(dept)), ("公示开始 publicity start", as_of),
             ("公示截止 publicity end", ends.max() if len(ends) else "—"), ("公示人数 claims", len(rows)),
             ("公示金额（元） amount", _yuan(rows["amount_fen"].sum())), ("运行编号 run", run_id or "—")]
    totals, money = workbooks.totals_by(
        rows, FUND_AND_TYPE, sums=[("amount_fen", "金额（元） amount")],
        counts=[("人数 claims", pd.Series(True, index=rows.index))])
    return workbooks.Book(f"职业技能提升补贴公示名单（{_department(dept)}）", dept, as_of, run_id, cover,
                          PUBLICITY_BOOK, rows, totals, money, sheet="公示名单",
                          notes=["公示期内对名单有异议的，请向主管部门反映（五 公示结果）。"])


def summary_book(as_of: dt.date, run_id: str, lines: pd.DataFrame) -> workbooks.Book:
    """资金汇总 for the finance officer: per department and fund, new payouts, reversals, net, trainees."""
    keys = ["department_code", "fund"]
    if lines.empty:
        rows = pd.DataFrame(columns=[c.name for c in SUMMARY_BOOK])
        work = pd.DataFrame(columns=[*keys, "amount_fen", "entry_type", "person_id"])
    else:
        work = lines
        pay = lines["entry_type"].eq("payout")
        g = lines.assign(p=pay, r=~pay, pf=lines["amount_fen"].where(pay, 0), rf=lines["amount_fen"].where(~pay, 0),
                         who=lines["person_id"].where(pay)).groupby(keys, sort=True)
        rows = pd.DataFrame({"payout_lines": g["p"].sum(), "payout_amount": fen_to_yuan_text(g["pf"].sum()),
                             "reversal_lines": g["r"].sum(), "reversal_amount": fen_to_yuan_text(g["rf"].sum()),
                             "amount": fen_to_yuan_text(g["amount_fen"].sum()), "trainees": g["who"].nunique()}
                            ).reset_index()
    pay = work["entry_type"].eq("payout")
    totals, money = workbooks.totals_by(
        work.assign(pf=work["amount_fen"].where(pay, 0), rf=work["amount_fen"].where(~pay, 0),
                    who=work["person_id"].where(pay)),
        [("fund", "资金 fund", "funds"), ("department_code", "部门 department", "departments")],
        sums=[("pf", "新增支付金额（元）"), ("rf", "冲销金额（元）"), ("amount_fen", "净额（元） net")],
        counts=[("新增支付笔数", pay), ("冲销笔数", ~pay)], distinct=[("who", "享受人数 trainees")])
    amount = work["amount_fen"]
    cover = [("记账日期 posted on", as_of), ("新增支付笔数 new payouts", int(pay.sum())),
             ("新增支付金额（元）", _yuan(amount[pay].sum())), ("冲销笔数 reversals", int((~pay).sum())),
             ("冲销金额（元）", _yuan(amount[~pay].sum())), ("净额（元） net", _yuan(amount.sum())),
             ("运行编号 run", run_id or "—")]
    return workbooks.Book(f"职业技能提升补贴资金汇总（{as_of.isoformat()}）", "ALL", as_of, run_id, cover, SUMMARY_BOOK,
                          rows, totals, money, sheet="汇总",
                          notes=["享受人数为当晚新增支付涉及的人数；合计表按资金汇总，同一人不重复计数。"])


# the department workbooks: kind -> maker(department, as-of, run, the department's rows of that kind's CSV)
BOOKS = {"ledger": ledger_book, "decisions": decisions_book, "publicity": publicity_book}


