"""Trace: from a payout (or a person) back through the decision, the policy and the source rows.

Needs only the warehouse: the drop files may be long gone.
"""

from __future__ import annotations

import json
import re
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from . import labels
from .contract import CLAIM_KEY as CLAIM
from .contract import mask_account_no, mask_ids_in_text, mask_resident_id, masks_by_column, person_codes
from .money import decimal_yuan, rate_text
from .warehouse import (
    STAGING,
    claim_sources,
    decisions,
    ledger_lines,
    payment_instructions,
    payment_outcomes,
    publicity,
    read_frame,
    reconciliation,
    runs,
    validation_results,
)

PAYOUT_ID = re.compile(r"^PO[0-9A-F]{4,22}$")  # a payout id (a reversal's line id has the same form)
MASKED_ID = re.compile(r"^([0-9]{6})\*{8}([0-9]{3}[0-9X])(?:\s+(\S.*))?$", re.I)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MASKED_FACTS = masks_by_column()  # the same masks as quarantine.csv's values


class TraceError(LookupError):
    """Nothing in the warehouse answers to what was asked."""


def to_yuan(fen: int) -> str:
    """Integer fen as a yuan string with two decimals."""
    return str(decimal_yuan(fen))


def mask(value) -> str:
    """An identity number masked as in department extracts."""
    return str(mask_resident_id(pd.Series([value], dtype="string")).iloc[0]) if value else ""


def _plain(v):
    if v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    return v.item() if hasattr(v, "item") else v


def _row(frame_row: pd.Series) -> dict:
    return {k: _plain(v) for k, v in frame_row.items()}


def _run(conn, run_id: str) -> dict:
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if row is None:
        return {"run_id": run_id}
    keep = ("run_id", "dag_id", "logical_date", "as_of", "mode", "status", "stage", "sources")
    return {k: _plain(row[k]) if not hasattr(row[k], "isoformat") else row[k].isoformat() for k in keep}


def _claim_filter(t, claim: dict):
    return (t.c.subsidy_type == claim["subsidy_type"]) & (t.c.reference == claim["reference"]) & (
        t.c.person_id == claim["person_id"])


def _decision(conn, run_id: str, claim: dict) -> dict | None:
    d = read_frame(conn, decisions, (decisions.c.run_id == run_id) & _claim_filter(decisions, claim))
    if d.empty:
        return None
    r = d.iloc[0]
    return {"decision": r["decision"], "reason_code": _plain(r["reason_code"]),
            "amount": to_yuan(int(r["amount_fen"])), "rule_id": r["rule_id"],
            "policy_version": _plain(r["policy_version"]),
            "parameters": {"base_amount": None if pd.isna(r["base_amount_fen"])
                           else to_yuan(int(r["base_amount_fen"])),
                           "uplift_rate": rate_text(int(r["uplift_units"])),
                           "cap_place": _plain(r["cap_place"])},
            "department_code": r["department_code"], "fund": r["fund"], "event_date": _plain(r["event_date"]),
            "decided_in_run": _plain(r["decided_in_run"]) or run_id, "as_of": _plain(r["as_of"])} | explained(
        r["decision"], _plain(r["reason_code"]), r["rule_id"])


def explained(decision: str, reason_code: str | None, rule_id: str | None) -> dict:
    """Chinese labels for a decision: the outcome, the reason's sentence and the clause of the plan."""
    clause = labels.reason_clause(reason_code, rule_id) if reason_code else labels.zh("rule_clauses", rule_id)
    return {"decision_label": labels.zh("decisions", decision), "reason_text": labels.reason_text(reason_code, rule_id),
            "clause": clause}


def sources_of(run_id: str, claim: dict) -> sa.ColumnElement:
    """Which claim_sources rows are the claim's in the run (an index search: ix_claim_sources_run_claim)."""
    return (claim_sources.c.run_id == run_id) & _claim_filter(claim_sources, claim)


def _sources(conn, run_id: str, claim: dict) -> list[dict]:
    src = read_frame(conn, claim_sources, sources_of(run_id, claim))
    if src.empty:
        return []
    files = read_frame(conn, reconciliation, reconciliation.c.run_id == run_id)[["registry", "file_name", "sha256"]]
    checks = read_frame(conn, validation_results, validation_results.c.run_id.in_(
        src["validated_run"].dropna().unique().tolist()))
    drop = _run(conn, run_id).get("sources")
    src = src.merge(files, on="registry", how="left").sort_values(["role", "registry", "source_row"])
    src["record_key"] = mask_ids_in_text(src["record_key"])  # the same masking as quarantine.csv
    out = []
    facts = _staged_facts(conn, run_id, src)
    for _, r in src.iterrows():
        gx = checks.loc[(checks["run_id"] == r["validated_run"]) & (checks["registry"] == r["registry"])]
        at = gx.iloc[0].get("validated_at") if not gx.empty else None
        out.append({
            "role": r["role"], "role_label": labels.zh("roles", r["role"]), "registry": r["registry"],
            "facts": facts.get((r["registry"], int(r["source_row"]))),
            "drop": drop, "file_name": _plain(r["file_name"]),
            "file_sha256": _plain(r["sha256"]), "row_number": int(r["source_row"]),
            "record_key": _plain(r["record_key"]), "row_sha256_prefix": _plain(r["row_hash"]),
            "accepted_by_gx": None if gx.empty else {
                "run_id": r["validated_run"], "suite": gx.iloc[0]["suite"], "success": bool(gx.iloc[0]["success"]),
                "expectations_evaluated": int(gx.iloc[0]["evaluated"]), "data_docs": _plain(gx.iloc[0]["data_docs"]),
                "validated_at": _shanghai(at)},
        })
    return out


def _shanghai(at) -> str | None:
    """A stored UTC time as Asia/Shanghai wall time."""
    if at is None or pd.isna(at):
        return None
    return pd.Timestamp(at).tz_localize("UTC").tz_convert(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") + " (Asia/Shanghai)"


def staged_rows(table: sa.Table, run_id: str, rows) -> sa.ColumnElement:
    """Which rows of a staging table are these source rows of the run (an index search: ix_<table>_row)."""
    return (table.c.run_id == run_id) & table.c.source_row.in_(sorted(int(n) for n in rows))


def _staged_facts(conn, run_id: str, src: pd.DataFrame) -> dict[tuple[str, int], dict]:
    """The values of the source rows as the run staged them (identity and account numbers masked); a run whose
    staging has been dropped (only the latest night's is kept) has none, and its rows are named by hash."""
    out = {}
    for registry, part in src.groupby("registry"):
        table = STAGING.get(registry)
        if table is None:
            continue
        rows = read_frame(conn, table, staged_rows(table, run_id, part["source_row"]))
        shown = [c for c in rows.columns if c not in ("run_id", "source_row", "row_hash", "validated_run")]
        for c in shown:
            if c in MASKED_FACTS:
                rows[c] = MASKED_FACTS[c](rows[c])
        for _, r in rows.iterrows():
            out[(registry, int(r["source_row"]))] = {c: _plain(r[c]) for c in shown}
    return out


def _history(conn, claim: dict) -> list[dict]:
    lines = read_frame(conn, ledger_lines, _claim_filter(ledger_lines, claim)).sort_values("seq")
    out = []
    for _, r in lines.iterrows():
        why = _decision(conn, r["run_id"], claim)
        out.append({"payout_id": r["payout_id"], "entry_type": r["entry_type"],
                    "entry_label": labels.zh("entry_types", r["entry_type"]),
                    "reverses_payout_id": _plain(r["reverses_payout_id"]), "posted_on": _plain(r["posted_on"]),
                    "amount": to_yuan(int(r["amount_fen"])), "department_code": r["department_code"],
                    "run_id": r["run_id"], "why": _why(r, why)})
    return out


def _why(line: pd.Series, decision: dict | None) -> str:
    if decision is None:
        return f"{labels.reason_text('claim_gone')} (the claim was no longer decided: its records are gone)"
    if line["entry_type"] == "payout":
        return f"核准 approved under {decision['rule_id']} ({decision['policy_version']}, {decision['clause']})"
    if decision["decision"] in ("rejected", "held"):
        return (f"{decision['reason_text']}（{decision['clause']}） now {decision['decision']}: "
                f"{decision['reason_code']}")
    return (f"{labels.reason_text('repriced')} (re-priced: now owed {decision['amount']} by "
            f"{decision['department_code']})")


def _publicity(conn, claim: dict) -> list[dict]:
    """P1: every publicity period of the claim, oldest first, with the run that put it on the list."""
    rows = read_frame(conn, publicity, _claim_filter(publicity, claim)).sort_values("seq")
    return [{"publicity_start": _plain(r["publicity_start"]), "publicity_end": _plain(r["publicity_end"]),
             "working_days": int(r["working_days"]), "amount": to_yuan(int(r["amount_fen"])),
             "department_code": r["department_code"], "run_id": r["run_id"]} for _, r in rows.iterrows()]


def _payment(conn, payout_id: str) -> list[dict]:
    """P3: the instructions for a payout (payments and any recovery) and the bank's result for each, with the
    registry row each rests on; account numbers masked."""
    instr = read_frame(conn, payment_instructions, payment_instructions.c.payout_id == payout_id)
    if instr.empty:
        return []
    outs = read_frame(conn, payment_outcomes, payment_outcomes.c.payout_id == payout_id)
    instr = instr.sort_values("seq").merge(outs.drop(columns=["payout_id", "run_id"]), on="instruction_id",
                                           how="left")
    instr["account_no_masked"] = mask_account_no(instr["account_no"])
    return [{"instruction_id": r["instruction_id"], "kind": r["kind"],
             "kind_label": labels.zh("instruction_kinds", r["kind"]), "attempt": int(r["attempt"]),
             "instructed_on": _plain(r["instructed_on"]), "amount": to_yuan(int(r["amount_fen"])),
             "payee_type": r["payee_type"], "payee_name": _plain(r["payee_name"]), "bank_name": _plain(r["bank_name"]),
             "account_no_masked": _plain(r["account_no_masked"]), "account_source": _plain(r["account_source"]),
             "run_id": r["run_id"], "result": _plain(r["result"]), "result_date": _plain(r["result_date"]),
             "failure_reason": _plain(r["failure_reason"]),
             "result_source": None if pd.isna(r["source_row"]) else {
                 "file_name": "payment_results.csv", "row_number": int(r["source_row"]),
                 "row_sha256_prefix": _plain(r["row_hash"]), "recorded_on": _plain(r["recorded_on"])}}
            for _, r in instr.iterrows()]


def person_of(conn, payout_id: str) -> str | None:
    """The identity number behind a payout id (for the access log; never shown)."""
    t = ledger_lines
    return conn.execute(sa.select(t.c.person_id).where(t.c.payout_id == payout_id.strip().upper())).scalar()


def trace_payout(conn, payout_id: str) -> dict:
    """The full chain behind one ledger line."""
    lines = read_frame(conn, ledger_lines, ledger_lines.c.payout_id == payout_id)
    if lines.empty:
        raise TraceError(f"no ledger line has payout id {payout_id}")
    line = lines.iloc[0]
    claim = {k: line[k] for k in CLAIM}
    decision = _decision(conn, line["run_id"], claim)
    decided_in = decision["decided_in_run"] if decision else line["run_id"]
    return {
        "payout": {k: _plain(line[k]) for k in ("payout_id", "entry_type", "reverses_payout_id", "posted_on",
                                                 "department_code", "fund", "subsidy_type", "reference", "name",
                                                 "occupation_code", "level", "rule_id", "policy_version",
                                                 "payee_type", "publicity_end")}
        | {"person_id_masked": mask(line["person_id"]), "amount": to_yuan(int(line["amount_fen"])),
           "uplift_rate": rate_text(int(line["uplift_units"]))},
        "posted_by_run": _run(conn, line["run_id"]),
        "decision": decision,
        "decided_by_run": _run(conn, decided_in),
        "sources": _sources(conn, decided_in, claim),
        "history": _history(conn, claim),
        "publicity": _publicity(conn, claim),
        "payment": _payment(conn, line["reverses_payout_id"] if line["entry_type"] == "reversal"
                            else line["payout_id"]),
    }


def trace_person(conn, person_id: str) -> list[dict]:
    """Every claim of a person: what the ledger holds and the latest decision."""
    d = read_frame(conn, decisions, decisions.c.person_id == person_id)
    lines = read_frame(conn, ledger_lines, ledger_lines.c.person_id == person_id)
    if d.empty and lines.empty:
        raise TraceError("no claim of that person is in the warehouse")
    latest = d.sort_values(["as_of", "run_id"]).groupby(CLAIM, sort=True).tail(1) if len(d) else d
    net = lines.groupby(CLAIM)["amount_fen"].sum() if len(lines) else pd.Series(dtype="int64")
    claims = sorted({tuple(k) for k in latest[CLAIM].itertuples(index=False)} | set(net.index))
    out = []
    for key in claims:
        row = latest.loc[(latest["subsidy_type"] == key[0]) & (latest["reference"] == key[1])]
        held = lines.loc[(lines["subsidy_type"] == key[0]) & (lines["reference"] == key[1])].sort_values("seq")
        out.append({"subsidy_type": key[0], "reference": key[1], "person_id_masked": mask(key[2]),
                    "latest_decision": None if row.empty else row.iloc[0]["decision"],
                    "reason_code": None if row.empty else _plain(row.iloc[0]["reason_code"]),
                    "decided_as_of": None if row.empty else _plain(row.iloc[0]["as_of"]),
                    "ledger_net": to_yuan(int(net.get(key, 0))),
                    "payout_ids": held["payout_id"].tolist()})
    return out


def render_payout(t: dict) -> str:
    """A payout trace as text for a terminal."""
    p, d = t["payout"], t["decision"] or {}
    lines = [f"payout {p['payout_id']}  {p['entry_type']}  {p['amount']} yuan  posted {p['posted_on']}",
             f"  claim     {p['subsidy_type']} {p['reference']}  person {p['person_id_masked']} {p['name'] or ''}",
             f"  paid by   {p['department_code']} from {p['fund']}",
             f"  run       {_run_text(t['posted_by_run'])}"]
    if p.get("reverses_payout_id"):
        lines.append(f"  reverses  {p['reverses_payout_id']}")
    if d:
        prm = d["parameters"]
        lines += [f"decision  {d['decision']}{' ' + d['reason_code'] if d.get('reason_code') else ''}  "
                  f"{d['amount']} yuan  rule {d['rule_id']}  policy {d['policy_version']}",
                  f"  parameters  base amount {prm['base_amount']}, uplift rate {prm['uplift_rate']}, "
                  f"cap place {prm['cap_place']}",
                  f"  decided by  {_run_text(t['decided_by_run'])}"]
    lines.append(f"rests on {len(t['sources'])} source row(s)")
    for s in t["sources"]:
        gx = s["accepted_by_gx"]
        gx_text = (f"GX suite {gx['suite']} in run {gx['run_id']} ({gx['expectations_evaluated']} expectations)"
                   if gx else "GX result not found")
        lines.append(f"  {s['role']:26s} {s['file_name']} row {s['row_number']}  key {s['record_key']}  "
                     f"row-hash {s['row_sha256_prefix']}")
        lines.append(f"  {'':26s} file sha256 {s['file_sha256']}; accepted by {gx_text}")
    for pub in t.get("publicity", []):
        lines.append(f"publicity {pub['publicity_start']} .. {pub['publicity_end']} ({pub['working_days']} working "
                     f"days)  {pub['amount']} yuan  {pub['department_code']}  [{pub['run_id']}]")
    for i in t.get("payment", []):
        res = i["result_source"]
        why = f" ({i['failure_reason']})" if i["failure_reason"] else ""
        result = (f"{i['result']} on {i['result_date']}{why}, payment_results.csv row {res['row_number']} "
                  f"row-hash {res['row_sha256_prefix']}" if res else "no result from the bank yet")
        lines.append(f"{i['kind']:9s} {i['instruction_id']} attempt {i['attempt']} on {i['instructed_on']}  "
                     f"{i['amount']} yuan to {i['payee_name'] or ''} {i['bank_name'] or ''} "
                     f"{i['account_no_masked'] or ''}  account from {i['account_source'] or '-'}")
        lines.append(f"  {'':8s} {result}")
    lines.append("history of the claim")
    for h in t["history"]:
        lines.append(f"  {h['posted_on']}  {h['entry_type']:8s} {h['amount']:>10s}  {h['payout_id']}  "
                     f"{h['department_code']}  {h['why']}  [{h['run_id']}]")
    return "\n".join(lines)


def _run_text(r: dict) -> str:
    where = f"dag {r['dag_id']} " if r.get("dag_id") else ""
    logical = f" logical date {r['logical_date']}" if r.get("logical_date") else ""
    return f"{where}run {r.get('run_id')} as-of {r.get('as_of')}{logical} ({r.get('mode') or 'full'})"


def render_person(claims: list[dict]) -> str:
    """A person's claims as text."""
    out = []
    for c in claims:
        out.append(f"{c['subsidy_type']:20s} {c['reference']:22s} {c['latest_decision'] or '-':9s} "
                   f"{c['reason_code'] or '':38s} net {c['ledger_net']:>10s}  {' '.join(c['payout_ids'])}")
    return "\n".join(out)


def to_json(obj) -> str:
    """JSON with Chinese text kept readable."""
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def _matching(conn, q: str) -> pd.DataFrame:
    """The claims a query names: a payout id; a masked identity number, alone or with a name; a reference
    (certificate number, <agreement>#k or the agreement alone, class id); or a name."""
    q = q.strip()
    d, lines = decisions, ledger_lines
    if PAYOUT_ID.match(q.upper()):
        return read_frame(conn, lines, lines.c.payout_id == q.upper())[CLAIM]
    m = MASKED_ID.match(q)
    if m:
        head, tail, name = m.group(1), m.group(2).upper(), m.group(3)

        def cond(t):
            c = t.c.person_id.startswith(head, autoescape=True) & t.c.person_id.endswith(tail, autoescape=True)
            return c & (t.c.name == name.strip()) if name else c
    else:
        def cond(t):
            return (t.c.reference == q) | t.c.reference.startswith(q + "#", autoescape=True) | (t.c.name == q)
    found = [pd.DataFrame(conn.execute(sa.select(*(t.c[k] for k in CLAIM)).where(cond(t)).distinct()).all(),
                          columns=CLAIM) for t in (d, lines)]
    return pd.concat(found, ignore_index=True).drop_duplicates()


def _latest_decisions(conn, persons: list[str]) -> pd.DataFrame:
    """Each claim's latest decision among those of the given persons (the last run of the latest night)."""
    d = read_frame(conn, decisions, decisions.c.person_id.in_(persons))
    if d.empty:
        return d
    started = read_frame(conn, runs)[["run_id", "started_at"]]
    d = d.merge(started, on="run_id", how="left")
    return d.sort_values(["as_of", "started_at", "run_id"], na_position="first").groupby(CLAIM).tail(1)


def find_claims(conn, q: str, key: bytes, departments: frozenset[str] | None = None,
                limit: int = 50) -> tuple[list[dict], set[str]]:
    """Every claim (approved, rejected, held, or only in the ledger) a query names, grouped by person, within
    the given departments (None: all); and the identity numbers shown (for the access log)."""
    found = _matching(conn, q)
    persons = sorted(found["person_id"].unique())[:limit]
    if not persons:
        return [], set()
    latest = _latest_decisions(conn, persons)
    lines = read_frame(conn, ledger_lines, ledger_lines.c.person_id.in_(persons))
    keys = found.merge(pd.DataFrame({"person_id": persons}), on="person_id")
    claims = keys.merge(latest, on=CLAIM, how="left")
    codes = dict(zip(persons, person_codes(pd.Series(persons, dtype="string"), key), strict=True))
    people: dict[str, dict] = {}
    for _, c in claims.sort_values(["person_id", "subsidy_type", "reference"]).iterrows():
        mine = lines.loc[(lines["subsidy_type"] == c["subsidy_type"]) & (lines["reference"] == c["reference"])
                         & (lines["person_id"] == c["person_id"])].sort_values("seq")
        depts = set(mine["department_code"]) | ({c["department_code"]} if pd.notna(c.get("department_code")) else set())
        if departments is not None and not depts & departments:
            continue
        decided = pd.notna(c.get("decision"))
        name = c.get("name") if decided else (mine["name"].iloc[-1] if len(mine) else None)
        p = people.setdefault(c["person_id"], {"person_code": codes[c["person_id"]],
                                               "person_id_masked": mask(c["person_id"]), "names": [], "claims": []})
        if name and name not in p["names"]:
            p["names"].append(name)
        p["claims"].append({
            "subsidy_type": c["subsidy_type"], "subsidy_label": labels.zh("subsidy_types", c["subsidy_type"]),
            "reference": c["reference"], "person_code": codes[c["person_id"]], "name": _plain(name),
            "decision": _plain(c.get("decision")), "reason_code": _plain(c.get("reason_code")),
            "rule_id": _plain(c.get("rule_id")), "amount": to_yuan(int(c["amount_fen"])) if decided else None,
            "department_code": _plain(c["department_code"] if decided else mine["department_code"].iloc[-1]),
            "decided_as_of": _plain(c.get("as_of")), "ledger_net": to_yuan(int(mine["amount_fen"].sum())),
            "payout_ids": mine["payout_id"].tolist(), "occupation_code": _plain(c.get("occupation_code")),
            "level": None if pd.isna(c.get("level")) else int(c["level"]),
            "level_label": labels.zh("levels", c.get("level")) if pd.notna(c.get("level")) else None,
            "event_date": _plain(c.get("event_date")),
        } | (explained(c["decision"], _plain(c.get("reason_code")), c["rule_id"]) if decided else
             {"decision_label": None, "reason_text": labels.reason_text("claim_gone"), "clause": None}))
    shown = set(people)
    return list(people.values()), shown


def person_for_code(conn, claim: dict, code: str, key: bytes) -> str | None:
    """The identity number behind a person code, among the persons of one claim (never sent to a browser)."""
    t = decisions
    cands = {r[0] for r in conn.execute(sa.select(t.c.person_id).where(
        (t.c.subsidy_type == claim["subsidy_type"]) & (t.c.reference == claim["reference"])).distinct())}
    cands |= {r[0] for r in conn.execute(sa.select(ledger_lines.c.person_id).where(
        (ledger_lines.c.subsidy_type == claim["subsidy_type"]) & (ledger_lines.c.reference == claim["reference"]))
        .distinct())}
    s = pd.Series(sorted(cands), dtype="string")
    hit = s[person_codes(s, key) == code]
    return None if hit.empty else str(hit.iloc[0])


def trace_claim(conn, claim: dict) -> dict:
    """The chain behind one claim, whatever its outcome: the latest decision with its sentence and clause, the
    facts the rule used (the source rows as staged, masked, with file, row, hash and GX verdict), the publicity
    periods, every ledger line with its payment, and the claim's history."""
    latest = _latest_decisions(conn, [claim["person_id"]])
    mine = latest.loc[(latest["subsidy_type"] == claim["subsidy_type"]) & (latest["reference"] == claim["reference"])] \
        if len(latest) else latest
    lines = read_frame(conn, ledger_lines, _claim_filter(ledger_lines, claim)).sort_values("seq")
    if mine.empty and lines.empty:
        raise TraceError("no decision and no ledger line for that claim")
    run_id = mine.iloc[0]["run_id"] if len(mine) else lines.iloc[-1]["run_id"]
    decision = _decision(conn, run_id, claim)
    return {
        "claim": {"subsidy_type": claim["subsidy_type"], "subsidy_label": labels.zh("subsidy_types",
                                                                                    claim["subsidy_type"]),
                  "reference": claim["reference"], "person_id_masked": mask(claim["person_id"]),
                  "name": _plain(mine.iloc[0]["name"]) if len(mine) else _plain(lines.iloc[-1]["name"]),
                  "occupation_code": _plain(mine.iloc[0]["occupation_code"]) if len(mine) else None,
                  "level": _plain(mine.iloc[0]["level"]) if len(mine) else None,
                  "level_label": labels.zh("levels", mine.iloc[0]["level"]) if len(mine) and pd.notna(
                      mine.iloc[0]["level"]) else None,
                  "ledger_net": to_yuan(int(lines["amount_fen"].sum())) if len(lines) else "0.00"},
        "decision": decision,
        "decided_by_run": _run(conn, decision["decided_in_run"] if decision else run_id),
        "sources": _sources(conn, decision["decided_in_run"] if decision else run_id, claim),
        "history": _history(conn, claim),
        "publicity": _publicity(conn, claim),
        "payment": [i for pid in lines.loc[lines["entry_type"] == "payout", "payout_id"] for i in _payment(conn, pid)],
    }


def render_claim(t: dict) -> str:
    """A claim trace as text (rejected and held claims included)."""
    c, d = t["claim"], t["decision"] or {}
    out = [f"claim {c['subsidy_type']} ({c['subsidy_label']}) {c['reference']}  person {c['person_id_masked']} "
           f"{c['name'] or ''}  ledger net {c['ledger_net']} yuan"]
    if d:
        out.append(f"decision  {d['decision']} ({d['decision_label']}) {d['amount']} yuan  rule {d['rule_id']}  "
                   f"policy {d['policy_version']}  as of {d['as_of']}  dept {d['department_code']}")
        if d.get("reason_code"):
            out.append(f"  reason  {d['reason_code']}: {d['reason_text']}")
        out.append(f"  clause  {d['clause']}")
    out.append(f"rests on {len(t['sources'])} source row(s)")
    for s in t["sources"]:
        facts = ", ".join(f"{k}={v}" for k, v in (s["facts"] or {}).items() if v is not None)
        out.append(f"  {s['role']:26s} {s['file_name']} row {s['row_number']} row-hash {s['row_sha256_prefix']}"
                   + (f"  validated {s['accepted_by_gx']['validated_at']}" if s.get("accepted_by_gx") and
                      s["accepted_by_gx"].get("validated_at") else ""))
        out.append(f"  {'':26s} {facts or '(the staged row of that run is no longer kept)'}")
    for h in t["history"]:
        out.append(f"  {h['posted_on']}  {h['entry_type']:8s} {h['amount']:>10s}  {h['payout_id']}  {h['why']}")
    return "\n".join(out)
