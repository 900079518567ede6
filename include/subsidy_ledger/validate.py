"""Validate: run each registry's Great Expectations suite, quarantine failing rows, type the accepted ones."""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import great_expectations as gx
import pandas as pd

from . import (
    data_docs,
    gx_expectations,  # noqa: F401  (registers the custom expectations the suites name)
)
from .contract import HASH_COL, PARSE_ERROR_COL, ROW_COL, empty_like, masks_by_column, record_keys, type_frame
from .extract import RawRegistry
from .identifiers import compact_resident_id
from .registries import Registry

EXPECTATIONS_ENV = "SUBSIDY_LEDGER_EXPECTATIONS"
QUARANTINE_COLUMNS = ["registry", "row_number", "record_key", "reasons", "person_id", "columns", "values_masked"]
MASKED_COLUMNS = masks_by_column()
VALUE_WIDTH = 40  # a shown value is cut to this many characters
DOCS_SITE = "run_data_docs"
COLLECT_ROWS = 100_000  # after a registry this large, validate_each frees what GX left in cycles
log = logging.getLogger(__name__)


def default_expectations_dir() -> Path:
    """The suites folder: $SUBSIDY_LEDGER_EXPECTATIONS, else expectations/ at the project root."""
    env = os.environ.get(EXPECTATIONS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "expectations"


def load_suite(expectations_dir: Path, registry: Registry) -> gx.ExpectationSuite:
    """Read one registry's suite from its JSON file."""
    path = Path(expectations_dir) / f"{registry.name}.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    return gx.ExpectationSuite(**doc)


@dataclass
class Validated:
    """A registry after validation: typed accepted rows, quarantined rows, and the GX verdict."""

    registry: Registry
    accepted: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int
    gx_summary: dict = field(default_factory=dict)
    accepted_rows: int | None = None  # set when the accepted rows were let go (without_rows)

    @property
    def reconciliation(self) -> dict:
        """Rows in, accepted and quarantined for this registry."""
        accepted = len(self.accepted) if self.accepted_rows is None else self.accepted_rows
        return {"registry": self.registry.name, "rows_in": self.rows_in,
                "accepted": accepted, "quarantined": len(self.quarantine)}

    def without_rows(self) -> Validated:
        """The verdict with its accepted rows let go (once stored); counts, quarantine and GX summary kept."""
        return replace(self, accepted=empty_like(self.accepted), accepted_rows=self.reconciliation["accepted"])


def _gx_context():
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints each batch under this many bytes by hashing every value (2.3 s of a 1,000,000-person
    # night's validation, and none above 1 GB, so a larger drop's Data Docs lacked it anyway): the drop's files
    # are already identified by their sha256 in the reconciliation, and every staged row by its row hash
    pandas_execution_engine.HASH_THRESHOLD = 0
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except (ImportError, AttributeError):  # the bars are cosmetic; older layouts just keep them
        pass
    return ctx


# NUL and the other C0 controls but tab and line breaks (which quoted names may hold), DEL, and a byte-order
# mark inside the data (two exports pasted together): no registry writes them on purpose, PostgreSQL cannot
# store NUL while SQLite can, and a key with an invisible character would never match its twin
_CONTROL = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]"


def control_rows(frame: pd.DataFrame, registry: Registry) -> pd.Series:
    """Rows with a control character (NUL, a stray byte-order mark, ...) in any registry column."""
    bad = pd.Series(False, index=frame.index)
    for c in registry.columns:
        bad |= frame[c].astype("string").str.contains(_CONTROL, regex=True).fillna(False).astype(bool)
    return bad


def failing_rows(result, registry: Registry) -> list[tuple[int, str, str]]:
    """(row number, reason, column) triples from a GX validation result (column "" for a table-wide check)."""
    pairs: list[tuple[int, str, str]] = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        reason = (cfg.meta or {}).get("reason") or f"{cfg.type}:{cfg.kwargs.get('column', '')}"
        column = cfg.kwargs.get("column") or "+".join(cfg.kwargs.get("column_list") or ())
        if r.exception_info and r.exception_info.get("raised_exception"):
            # An expectation that could not run means the suite is broken, not the rows.
            raise RuntimeError(f"expectation {cfg.type} on {registry.name} failed to run: "
                               f"{r.exception_info.get('exception_message')}")
        for item in r.result.get("unexpected_index_list") or []:
            rows = item[ROW_COL]  # a list of rows when the values are left out (exclude_unexpected_values)
            pairs.extend((int(n), reason, column) for n in (rows if isinstance(rows, list) else [rows]))
    return pairs


def _shown(values: pd.Series, column: str) -> pd.Series:
    """Values as a clerk may see them in quarantine.csv: identity and account numbers masked (an unmasked
    malformed one shows only its length), control characters escaped, long text cut."""
    s = values.astype("string")
    if column in MASKED_COLUMNS:
        masked = MASKED_COLUMNS[column](s)
        s = masked.fillna("<" + s.str.len().astype("string") + " characters>")
    s = s.str.replace(r"[\x00-\x1f\x7f\ufeff]", "�", regex=True)
    long = s.str.len() > VALUE_WIDTH
    return s.where(~long, s.str.slice(0, VALUE_WIDTH) + "…").fillna("<empty>")


def offending_values(frame: pd.DataFrame, triples: pd.DataFrame) -> pd.DataFrame:
    """Per quarantined row: the columns its failed checks concern and `column=value` for each, masked."""
    t = triples.loc[triples["column"].astype(str) != "", [ROW_COL, "column"]].drop_duplicates()
    parts = []
    for col, part in t.groupby("column", sort=True):
        names = [c for c in str(col).split("+") if c in frame]
        vals = frame.set_index(ROW_COL).reindex(part[ROW_COL])
        text = None
        for c in names:
            one = c + "=" + _shown(vals[c], c)
            text = one if text is None else text + ", " + one
        parts.append(pd.DataFrame({ROW_COL: part[ROW_COL].to_numpy(), "column": col,
                                   "value": text.to_numpy() if text is not None else pd.NA}))
    if not parts:
        return pd.DataFrame(columns=["columns", "values_masked"])
    allv = pd.concat(parts, ignore_index=True).sort_values([ROW_COL, "column"])
    return pd.DataFrame({"columns": joined(allv[ROW_COL], allv["column"], ";"),
                         "values_masked": joined(allv[ROW_COL], allv["value"], "; ")})


def joined(rows: pd.Series, texts: pd.Series, sep: str) -> pd.Series:
    """Per row number (sorted), its texts joined with sep in the order given, missing ones left out ("" where all
    are). Joined a rank at a time (a row's first text, then its second, ...): a Python join per row took 1.5 s
    of a 1,000,000-person night's validation, and a row fails a handful of checks at most."""
    out = pd.Series("", index=pd.Index(pd.unique(rows.to_numpy()), name=rows.name), dtype="string").sort_index()
    keep = texts.notna().to_numpy()
    r, t = rows.to_numpy()[keep], texts.astype("string").to_numpy()[keep]
    rank = pd.Series(r).groupby(r, sort=False).cumcount().to_numpy()
    for j in range(int(rank.max()) + 1 if len(rank) else 0):
        at = rank == j
        out.loc[r[at]] = t[at] if j == 0 else (out.loc[r[at]] + sep + t[at]).to_numpy()
    return out


def expectation_outcomes(result) -> list[dict]:
    """Each expectation's verdict on the batch, without the row lists (those are in the quarantine)."""
    out = []
    for r in result.results:
        cfg = r.expectation_config
        out.append({"expectation": cfg.type, "column": cfg.kwargs.get("column") or cfg.kwargs.get("column_list"),
                    "reason": (cfg.meta or {}).get("reason"), "success": bool(r.success),
                    "unexpected_count": int((r.result or {}).get("unexpected_count") or 0)})
    return out


def _run_suite(ctx, frame: pd.DataFrame, reg: Registry, suite: gx.ExpectationSuite, as_of: dt.date,
               run_name: str | None):
    """Validate through a GX checkpoint, so that the result also lands in the run's Data Docs."""
    from great_expectations.core.run_identifier import RunIdentifier

    ds = ctx.data_sources.add_pandas(f"drop_{reg.name}")
    batch_def = ds.add_dataframe_asset(reg.name).add_batch_definition_whole_dataframe("snapshot")
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(data=batch_def, suite=suite, name=reg.name))
    # Data Docs are built once after the last registry (building them per checkpoint costs seconds)
    checkpoint = ctx.checkpoints.add(gx.Checkpoint(
        name=reg.name, validation_definitions=[vd], actions=[],
        # the failing values themselves stay out of results and Data Docs: they may be identity numbers (PIPL)
        # or hostile text; the rows are named by number and their reasons are in the quarantine
        # the row numbers are the batch's index: GX then lists a failing check's rows from it at once (from a
        # column it looks each row up alone), and writes no pandas query naming the same rows again
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_COL],
                       "exclude_unexpected_values": True, "return_unexpected_index_query": False}))
    result = checkpoint.run(batch_parameters={"dataframe": frame[[*reg.columns, ROW_COL]].set_index(ROW_COL)},
                            expectation_parameters={"as_of": as_of.isoformat()},
                            run_id=RunIdentifier(run_name=run_name) if run_name else None)
    # the data source's engine keeps the batch and every metric computed on it (the registry's rows several
    # times over) for as long as the context lives; the result is in the context's stores, for Data Docs
    ctx.checkpoints.delete(reg.name)
    ctx.validation_definitions.delete(reg.name)
    ctx.data_sources.delete(ds.name)
    return next(iter(result.run_results.values()))


def validate_registry(ctx, raw: RawRegistry, suite: gx.ExpectationSuite, as_of: dt.date,
                      run_name: str | None = None) -> Validated:
    """Validate one raw registry with its suite; every row ends accepted or quarantined."""
    reg = raw.registry
    frame = raw.frame
    if "person_id" in frame:
        frame = frame.assign(person_id=compact_resident_id(frame["person_id"]))
    check = frame
    result = _run_suite(ctx, check, reg, suite, as_of, run_name)
    pairs = failing_rows(result, reg)
    parse_bad = check[PARSE_ERROR_COL].notna()
    pairs += [(int(r), "malformed_record", "") for r in check.loc[parse_bad, ROW_COL]]
    pairs += [(int(r), "control_character", "") for r in check.loc[control_rows(check, reg), ROW_COL]]
    triples = pd.DataFrame(pairs, columns=[ROW_COL, "reason", "column"])
    reasons = triples[[ROW_COL, "reason"]].drop_duplicates()
    bad = joined(reasons[ROW_COL], reasons["reason"], ";")
    shown = offending_values(frame, triples)
    is_bad = frame[ROW_COL].isin(bad.index)
    rejected = frame.loc[is_bad]
    person = (rejected["person_id"] if "person_id" in rejected else pd.Series(pd.NA, index=rejected.index))
    quarantine = pd.DataFrame({
        "registry": reg.name,
        "row_number": rejected[ROW_COL].astype("int64").to_numpy(),
        "record_key": record_keys(rejected, reg).to_numpy(),
        "reasons": bad.reindex(rejected[ROW_COL]).to_numpy(),
        # whose row it was (compacted, as read): their claims on this registry wait for the correction
        "person_id": person.astype("string").str.replace("\x00", "", regex=False).to_numpy(),
        "columns": shown["columns"].reindex(rejected[ROW_COL]).to_numpy(),
        "values_masked": shown["values_masked"].reindex(rejected[ROW_COL]).to_numpy(),
    }, columns=QUARANTINE_COLUMNS)
    accepted = type_frame(frame.loc[~is_bad, [*reg.columns, ROW_COL, HASH_COL]].reset_index(drop=True), reg)
    stats = result.statistics
    summary = {"success": bool(result.success), "evaluated": int(stats["evaluated_expectations"]),
               "successful": int(stats["successful_expectations"]), "suite": suite.name,
               "rows_checked": len(check), "expectations": expectation_outcomes(result)}
    log.info("validated %s: %d in (%d checked by GX), %d accepted, %d quarantined", reg.name, len(frame),
             len(check), len(accepted), len(quarantine))
    return Validated(reg, accepted, quarantine, len(frame), summary)


ATTENDANCE_REASON = "attendance_exceeds_class_days"
UNKNOWN_PROJECT_REASON = "unknown_project"
OUTCOME_WITHOUT_RESOLUTION_REASON = "outcome_without_resolution"
UNKNOWN_INSTRUCTION_REASON = "unknown_instruction"  # a bank result for no instruction issued (or another payout)


def quarantine_more(v: Validated, bad: pd.Series, reason: str, columns: tuple[str, ...] = ()) -> Validated:
    """v with the accepted rows flagged in `bad` moved to its quarantine with `reason` (a cross-registry check
    that GX's per-registry suites cannot make)."""
    if not bad.any():
        return v
    acc = v.accepted
    rows = acc.loc[bad]
    person = rows["person_id"] if "person_id" in rows else pd.Series(pd.NA, index=rows.index)
    shown = None
    for c in columns:  # typed values: dates print as dates
        text = rows[c].astype("string").str.slice(0, 10) if str(rows[c].dtype).startswith("datetime") else rows[c]
        one = c + "=" + _shown(text, c)
        shown = one if shown is None else shown + ", " + one
    extra = pd.DataFrame({"registry": v.registry.name, "row_number": rows[ROW_COL].astype("int64").to_numpy(),
                          "record_key": record_keys(rows, v.registry).to_numpy(), "reasons": reason,
                          "person_id": person.astype("string").to_numpy(),
                          "columns": "+".join(columns) or pd.NA,
                          "values_masked": shown.to_numpy() if shown is not None else pd.NA},
                         columns=QUARANTINE_COLUMNS)
    quarantine = pd.concat([v.quarantine, extra], ignore_index=True).sort_values("row_number")
    return Validated(v.registry, acc.loc[~bad].reset_index(drop=True), quarantine.reset_index(drop=True),
                     v.rows_in, v.gx_summary)


def attendance_within_class_days(enrollments: Validated, classes: Validated) -> Validated:
    """Quarantine roster entries that claim more attended days than their class has calendar days; a roster
    that pays more is never capped."""
    acc = enrollments.accepted
    cls = classes.accepted[["class_id", "start_date", "end_date"]]
    days = acc[["class_id"]].merge(cls, on="class_id", how="left")
    class_days = ((days["end_date"] - days["start_date"]).dt.days + 1).to_numpy()
    over = pd.Series((acc["attendance_days"].to_numpy(dtype="float64", na_value=0) > class_days), index=acc.index)
    return quarantine_more(enrollments, over, ATTENDANCE_REASON, ("class_id", "attendance_days"))


def classes_name_known_projects(classes: Validated, projects: Validated | None) -> Validated:
    """Quarantine classes that name a project the accepted project filings do not hold (R7 then holds their
    trainees' claims until the filing or the class is corrected, rather than rejecting them)."""
    known = projects.accepted["project_id"] if projects is not None else pd.Series(dtype="string")
    named = classes.accepted["project_id"]
    return quarantine_more(classes, named.notna() & ~named.isin(known), UNKNOWN_PROJECT_REASON, ("project_id",))


def objections_resolved_with_outcome(objections: Validated) -> Validated:
    """Quarantine objections with an outcome but no resolution date, or a resolution date but no outcome (P2):
    whether such an objection is still open cannot be told."""
    acc = objections.accepted
    return quarantine_more(objections, acc["outcome"].isna() != acc["resolved_on"].isna(),
                           OUTCOME_WITHOUT_RESOLUTION_REASON, ("outcome", "resolved_on"))


# the cross-registry checks: a registry's final verdict waits for the registries its check reads
NEEDS = {"training_classes": ("training_projects",), "class_enrollments": ("training_classes",)}
READ_BY_OTHERS = frozenset(d for ds in NEEDS.values() for d in ds)  # a caller that reads these first waits least


def _cross_checked(name: str, v: Validated, final: Mapping[str, Validated]) -> Validated:
    """v after the cross-registry check of its registry, given the final verdicts of the ones it reads."""
    if name == "training_classes":
        return classes_name_known_projects(v, final.get("training_projects"))
    if name == "class_enrollments" and "training_classes" in final:
        return attendance_within_class_days(v, final["training_classes"])
    if name == "objections":
        return objections_resolved_with_outcome(v)
    return v


def validate_each(raws: Mapping[str, RawRegistry] | Iterable[tuple[str, RawRegistry]], as_of: dt.date,
                  expectations_dir: Path | None = None, docs_dir: Path | None = None,
                  run_name: str | None = None) -> Iterator[tuple[str, Validated]]:
    """(name, final verdict) of every registry of a drop, each as soon as the registries its cross-check reads
    are final (NEEDS; registries the drop lacks count as final once the drop ends). raws: by name, or (name,
    registry) pairs read one at a time, so that a caller who stores each verdict as it comes holds one
    registry's rows at a time. With docs_dir, GX Data Docs of this run are built there once the last verdict
    was taken (each verdict's gx_summary then names its page)."""
    exp_dir = Path(expectations_dir) if expectations_dir else default_expectations_dir()
    ctx = _gx_context()
    if docs_dir:
        ctx.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(docs_dir).resolve())}})
    read: dict[str, Validated] = {}  # not final yet: waiting for a registry its check reads
    final: dict[str, Validated] = {}  # final verdicts others' checks read (classes and projects: small)
    summaries: dict[str, dict] = {}

    def ready(ended: bool) -> Iterator[tuple[str, Validated]]:
        # a registry waits for those it reads that are not final: all of them before the drop ended, then only
        # those read but still waiting themselves (a registry the drop lacks never comes)
        moved = True
        while moved:
            moved = False
            for name in list(read):
                if any(d not in final and (d in read or not ended) for d in NEEDS.get(name, ())):
                    continue
                v = _cross_checked(name, read.pop(name), final)
                if name in READ_BY_OTHERS:
                    final[name] = v
                summaries[name] = v.gx_summary
                moved = True
                yield name, v

    for name, raw in (raws.items() if isinstance(raws, Mapping) else raws):
        v = validate_registry(ctx, raw, load_suite(exp_dir, raw.registry), as_of, run_name)
        assert v.rows_in == len(v.accepted) + len(v.quarantine), f"{name}: rows lost in validation"
        del raw  # its raw rows go before the next registry's are read
        if v.rows_in >= COLLECT_ROWS:
            # what GX made of the batch hangs in reference cycles once let go: freed now, not whenever Python's
            # collector next runs (at 1,000,000 persons, 108-155 MiB of Arrow memory after each large registry)
            gc.collect()
        read[name] = v
        del v  # once its caller let go of it, its accepted rows go before the next registry's are validated
        yield from ready(ended=False)
    yield from ready(ended=True)  # those waiting for a registry the drop lacks
    if docs_dir:
        ctx.build_data_docs(site_names=[DOCS_SITE])
        try:
            data_docs.install_assets(Path(docs_dir).parent)
            data_docs.localise(Path(docs_dir), Path(docs_dir).parent)
        except data_docs.AssetsMissing as exc:  # the pages still work where the internet is reachable
            log.warning("Data Docs load their scripts from public CDNs: %s", exc)
        for name, summary in summaries.items():
            pages = sorted(Path(docs_dir).glob(f"validations/{name}/**/*.html"))
            summary["data_docs"] = str(pages[-1]) if pages else str(Path(docs_dir) / "index.html")


def validate_drop(raws: Mapping[str, RawRegistry] | Iterable[tuple[str, RawRegistry]], as_of: dt.date,
                  expectations_dir: Path | None = None, docs_dir: Path | None = None,
                  run_name: str | None = None) -> dict[str, Validated]:
    """Every registry's final verdict by name (validate_each, kept whole)."""
    return dict(validate_each(raws, as_of, expectations_dir, docs_dir, run_name))
