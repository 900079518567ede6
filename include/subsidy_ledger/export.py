"""Export: the extracts of CONTRACT.md under <out>/<as-of>/ (CSV with BOM for Excel, XLSX, masked ids)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import xlsxwriter

from .identifiers import mask_account_no, mask_name, mask_resident_id
from .money import fen_to_yuan_text, rate_units_to_text

LEDGER_COLUMNS = ["payout_id", "entry_type", "reverses_payout_id", "posted_on", "department_code", "fund",
                  "subsidy_type", "payee_type", "person_id_masked", "name", "reference", "occupation_code", "level",
                  "amount", "uplift_rate", "rule_id", "policy_version", "publicity_end", "run_id"]
DECISION_COLUMNS = ["reference", "subsidy_type", "person_id_masked", "name", "decision", "reason_code", "held_rows",
                    "amount", "rule_id", "department_code"]
SUMMARY_COLUMNS = ["posted_on", "department_code", "fund", "subsidy_type", "payout_lines", "reversal_lines",
                   "trainees", "amount"]
FUNDING_COLUMNS = ["department_code", "fund", "year", "filed_projects", "filed_trainees", "filed_budget",
                   "approved_claims", "approved", "held_over_budget", "posted", "paid"]
SUPERVISION_COLUMNS = ["signal", "department_code", "class_id", "institution_credit_code", "institution_name",
                       "person_id_masked", "name", "detail"]
INSTITUTION_PAID = {"training_subsidy"}  # R7 pays the institution; every other subsidy the person
RECONCILIATION_COLUMNS = ["registry", "file_name", "present", "encoding", "sha256", "rows_in", "accepted",
                          "quarantined", "gx_success", "problem"]
QUARANTINE_COLUMNS = ["registry", "row_number", "key", "reasons"]
CITY_OVERLAP_COLUMNS = ["department_code", "reference", "person_id_masked", "name", "occupation_code", "level",
                        "district_amount", "city_certificate_no", "city_paid_on", "city_amount"]
PUBLICITY_COLUMNS = ["department_code", "subsidy_type", "reference", "name_masked", "person_id_masked",
                     "occupation_code", "level", "amount", "publicity_start", "publicity_end"]
PAYMENTS_COLUMNS = ["payout_id", "posted_on", "department_code", "fund", "subsidy_type", "reference", "payee_type",
                    "person_id_masked", "name", "amount", "state", "instruction_id", "attempt", "instructed_on",
                    "payee_name", "account_no_masked", "result_date", "failure_reason", "reversal_id", "recovery_id"]
PAYMENTS_RECONCILIATION_COLUMNS = ["department_code", "fund", "owed", "paid", "in_transit", "waiting",
                                   "recoveries_owed", "reversed_in_transit", "recovered", "balanced"]
BANK_COLUMNS = ["instruction_id", "payout_id", "payee_name", "payee_id", "bank_name", "account_no", "amount",
                "purpose"]
SUBSIDY_PURPOSE = {"skill_upgrade": "技能提升补贴", "special_ability": "专项能力证书补贴",
                   "apprentice_employee": "职工学徒补贴", "apprentice_student": "学生学徒补贴",
                   "living_allowance": "生活费补贴", "training_subsidy": "职业培训补贴"}
NUMERIC_XLSX = {"amount"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: pd.Series) -> pd.Series:
    """Prefix a quote to cells that a spreadsheet would run as a formula (=, +, -, @ ...)."""
    s = text.astype("string")
    risky = s.str.startswith(_FORMULA_START).fillna(False)
    return s.where(~risky, "'" + s)


def _date_text(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.strftime("%Y-%m-%d").astype("string")


def ledger_extract(lines: pd.DataFrame) -> pd.DataFrame:
    """Ledger lines in the contract's columns, identity numbers masked."""
    return pd.DataFrame({
        "payout_id": lines["payout_id"], "entry_type": lines["entry_type"],
        "reverses_payout_id": lines["reverses_payout_id"], "posted_on": _date_text(lines["posted_on"]),
        "department_code": lines["department_code"], "fund": lines["fund"], "subsidy_type": lines["subsidy_type"],
        "payee_type": lines["subsidy_type"].isin(INSTITUTION_PAID).map({True: "institution", False: "person"}),
        "person_id_masked": mask_resident_id(lines["person_id"]), "name": neutralise(lines["name"]),
        "reference": neutralise(lines["reference"]), "occupation_code": neutralise(lines["occupation_code"]),
        "level": lines["level"].astype("Int64"), "amount": fen_to_yuan_text(lines["amount_fen"]),
        "uplift_rate": rate_units_to_text(lines["uplift_units"]), "rule_id": lines["rule_id"],
        "policy_version": lines["policy_version"],
        "publicity_end": _date_text(lines["publicity_end"]) if "publicity_end" in lines else pd.NA,
        "run_id": lines["run_id"],
    }, columns=LEDGER_COLUMNS)


def decisions_extract(d: pd.DataFrame) -> pd.DataFrame:
    """Decisions in the contract's columns, identity numbers masked."""
    d = d.sort_values(["subsidy_type", "reference", "person_id"], kind="stable")
    return pd.DataFrame({
        "reference": neutralise(d["reference"]), "subsidy_type": d["subsidy_type"],
        "person_id_masked": mask_resident_id(d["person_id"]), "name": neutralise(d["name"]),
        "decision": d["decision"], "reason_code": d["reason_code"],
        "held_rows": d.get("held_rows", pd.NA), "amount": fen_to_yuan_text(d["amount_fen"]),
        "rule_id": d["rule_id"], "department_code": d["department_code"],
    }, columns=DECISION_COLUMNS)


def summary_extract(lines: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Totals posted on the as-of date by department, fund and subsidy type."""
    if lines.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    payout = lines["entry_type"].eq("payout")
    g = lines.assign(p=payout, r=lines["entry_type"].eq("reversal"), paid_person=lines["person_id"].where(payout)
                     ).groupby(["department_code", "fund", "subsidy_type"], sort=True)
    # trainees: the distinct people a payout was posted for tonight (根据备案的培训人数、补贴金额汇总统计)
    s = pd.DataFrame({"payout_lines": g["p"].sum(), "reversal_lines": g["r"].sum(),
                      "trainees": g["paid_person"].nunique(), "amount_fen": g["amount_fen"].sum()}).reset_index()
    s.insert(0, "posted_on", as_of.isoformat())
    s["amount"] = fen_to_yuan_text(s["amount_fen"])
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


def publicity_extract(records: pd.DataFrame) -> pd.DataFrame:
    """公示名单 (P1): the claims entering publicity, name and identity number masked."""
    r = records.sort_values(["department_code", "subsidy_type", "reference", "person_id"], kind="stable")
    return pd.DataFrame({
        "department_code": r["department_code"], "subsidy_type": r["subsidy_type"],
        "reference": neutralise(r["reference"]), "name_masked": neutralise(mask_name(r["name"])),
        "person_id_masked": mask_resident_id(r["person_id"]), "occupation_code": neutralise(r["occupation_code"]),
        "level": r["level"].astype("Int64"), "amount": fen_to_yuan_text(r["amount_fen"]),
        "publicity_start": _date_text(r["publicity_start"]), "publicity_end": _date_text(r["publicity_end"]),
    }, columns=PUBLICITY_COLUMNS)


def payments_extract(st: pd.DataFrame) -> pd.DataFrame:
    """Each payout line and its payment state (P3), identity and account numbers masked."""
    s = st.sort_values(["posted_on", "payout_id"], kind="stable")
    kind = s["subsidy_type"].isin(INSTITUTION_PAID).map({True: "institution", False: "person"})
    return pd.DataFrame({
        "payout_id": s["payout_id"], "posted_on": _date_text(s["posted_on"]),
        "department_code": s["department_code"], "fund": s["fund"], "subsidy_type": s["subsidy_type"],
        "reference": neutralise(s["reference"]), "payee_type": kind,
        "person_id_masked": mask_resident_id(s["person_id"]), "name": neutralise(s["name"]),
        "amount": fen_to_yuan_text(s["amount_fen"]), "state": s["state"], "instruction_id": s["instruction_id"],
        "attempt": s["attempt"].astype("Int64"), "instructed_on": _date_text(s["instructed_on"]),
        "payee_name": neutralise(s["payee_name"]), "account_no_masked": mask_account_no(s["account_no"]),
        "result_date": _date_text(s["result_date"]), "failure_reason": neutralise(s["failure_reason"]),
        "reversal_id": s["reversal_id"], "recovery_id": s["recovery_id"],
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
        "amount": fen_to_yuan_text(i["amount_fen"]), "purpose": i["subsidy_type"].map(SUBSIDY_PURPOSE) + " "
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
    frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def write_xlsx(frame: pd.DataFrame, path: Path, as_of: dt.date, sheet: str = "ledger") -> None:
    """Stream a frame to XLSX; text stays text (no formulas), amounts are numbers with two decimals."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    # A fixed creation date keeps the bytes identical when a run is repeated.
    wb.set_properties({"created": dt.datetime.combine(as_of, dt.time())})
    ws = wb.add_worksheet(sheet)
    bold, money = wb.add_format({"bold": True}), wb.add_format({"num_format": "0.00"})
    for j, col in enumerate(frame.columns):
        ws.write_string(0, j, col, bold)
    cols = [frame[c].astype("string").tolist() for c in frame.columns]
    for i in range(len(frame)):
        for j, col in enumerate(frame.columns):
            v = cols[j][i]
            if v is None or v is pd.NA:
                continue
            if col in NUMERIC_XLSX:
                ws.write_number(i + 1, j, float(Decimal(v)), money)
            else:
                ws.write_string(i + 1, j, v)
    wb.close()


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


def write_extracts(out: Path, as_of: dt.date, departments: list[str], lines: pd.DataFrame,
                   decisions: pd.DataFrame, reconciliation: pd.DataFrame, quarantine: pd.DataFrame,
                   city_overlaps: pd.DataFrame, funding: pd.DataFrame, supervision: pd.DataFrame,
                   publicised: pd.DataFrame | None = None, pay_states: pd.DataFrame | None = None,
                   pay_reconciliation: pd.DataFrame | None = None) -> Path:
    """Write every extract of the run into <out>/<as-of>, all at once (see published_folder); returns it."""
    final = Path(out) / as_of.isoformat()
    with published_folder(final) as root:
        _write_all(root, as_of, departments, lines, decisions, reconciliation, quarantine, city_overlaps)
        write_csv(funding, root / "funding.csv")
        write_csv(supervision_extract(supervision), root / "supervision.csv")
        pub = publicity_extract(publicised if publicised is not None else pd.DataFrame(
            columns=["department_code", "subsidy_type", "reference", "person_id", "name", "occupation_code", "level",
                     "amount_fen", "publicity_start", "publicity_end"]))
        pays = payments_extract(pay_states) if pay_states is not None and len(pay_states) else \
            pd.DataFrame(columns=PAYMENTS_COLUMNS)
        depts = sorted(set(departments) | set(lines["department_code"].dropna())
                       | set(decisions["department_code"].dropna()))
        for dept in depts:
            mine = pub.loc[pub["department_code"] == dept]
            write_csv(mine, root / dept / "publicity.csv")
            write_xlsx(mine, root / dept / "publicity.xlsx", as_of, sheet="publicity")
            write_csv(pays.loc[pays["department_code"] == dept], root / dept / "payments.csv")
        recon = pay_reconciliation if pay_reconciliation is not None else pd.DataFrame(
            columns=["department_code", "fund"])
        write_csv(payments_reconciliation_extract(recon) if len(recon) else
                  pd.DataFrame(columns=PAYMENTS_RECONCILIATION_COLUMNS), root / "payments_reconciliation.csv")
    return final


def _write_all(root: Path, as_of: dt.date, departments: list[str], lines: pd.DataFrame,
               decisions: pd.DataFrame, reconciliation: pd.DataFrame, quarantine: pd.DataFrame,
               city_overlaps: pd.DataFrame) -> None:
    ledger = ledger_extract(lines)
    dec = decisions_extract(decisions)
    depts = sorted(set(departments) | set(ledger["department_code"].dropna()) | set(dec["department_code"].dropna()))
    for dept in depts:
        mine = ledger.loc[ledger["department_code"] == dept]
        write_csv(mine, root / dept / "ledger.csv")
        write_xlsx(mine, root / dept / "ledger.xlsx", as_of)
        write_csv(dec.loc[dec["department_code"] == dept], root / dept / "decisions.csv")
    write_csv(summary_extract(lines, as_of), root / "summary.csv")
    write_csv(reconciliation[RECONCILIATION_COLUMNS].sort_values("registry"), root / "reconciliation.csv")
    q = quarantine.rename(columns={"record_key": "key"}).sort_values(["registry", "row_number"])
    q = q.assign(key=neutralise(mask_ids_in_text(q["key"])), reasons=neutralise(q["reasons"]))
    write_csv(q[QUARANTINE_COLUMNS], root / "quarantine.csv")
    write_csv(city_overlaps_extract(city_overlaps), root / "city_overlaps.csv")


def mask_ids_in_text(text: pd.Series) -> pd.Series:
    """Mask anything shaped like an 18-character identity number inside free text (record keys)."""
    return text.astype("string").str.replace(r"(?<![0-9])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])",
                                             r"\1********\2", regex=True)
