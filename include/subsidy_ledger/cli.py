"""Command line: `subsidy-ledger generate` and `subsidy-ledger run` (CONTRACT.md "The command")."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from . import __version__
from .money import yuan_to_fen
from .partition import MAX_PARTITIONS


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def _run_id(text: str) -> str:
    from .pipeline import check_run_id

    try:
        return check_run_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    """A whole number from 1 to MAX_PARTITIONS (partitions, processes)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_PARTITIONS}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"not a share between 0 and 1: {text!r}")
    return value


def _yuan(text: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        if Decimal(text) >= 0:
            return text
    except InvalidOperation:
        pass
    raise argparse.ArgumentTypeError(f"not an amount in yuan: {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="subsidy-ledger", description=__doc__)
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write a realistic sample registry drop")
    g.add_argument("--persons", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("change", help="copy a drop with a share of its rows edited, deleted or added")
    c.add_argument("--sources", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--share", type=float, default=0.01)
    c.add_argument("--seed", type=int, default=1)
    t = sub.add_parser("trace", help="why a payout or a claim exists, or was rejected or held: decision, clause, "
                                     "facts, source rows, publicity, payment, history")
    t.add_argument("payout_id", nargs="?", metavar="PAYOUT_ID_OR_REFERENCE",
                   help="a payout id, or a certificate number, <agreement>#k (or the agreement), class id, "
                        "masked identity number (with the name) or name")
    t.add_argument("--person", default=None, help="list every claim of this person (identity number)")
    t.add_argument("--json", action="store_true")
    t.add_argument("--warehouse", default=None)
    a = sub.add_parser("access-log", help="export the log of lookups of personal data (identity numbers masked)")
    a.add_argument("--from", dest="start", type=_date, required=True)
    a.add_argument("--to", dest="end", type=_date, required=True)
    a.add_argument("--out", type=Path, default=None, help="CSV file (UTF-8 with BOM); default: standard output")
    a.add_argument("--warehouse", default=None)
    g2 = sub.add_parser("reasons", help="the glossary of reason codes: Chinese sentence and clause of the plan")
    g2.add_argument("--markdown", action="store_true", help="as docs/reasons.md")
    r = sub.add_parser("run", help="run one nightly sync")
    r.add_argument("--sources", required=True,
                   help="drop folder of registry CSV files, or an SQLAlchemy URL of a registry database")
    r.add_argument("--as-of", type=_date, required=True, dest="as_of")
    r.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default $SUBSIDY_LEDGER_WAREHOUSE "
                                                     "or sqlite:///subsidy_ledger.sqlite)")
    r.add_argument("--out", type=Path, default=Path("out"))
    r.add_argument("--run-id", default=None, type=_run_id, help="default cli__<as-of>")
    r.add_argument("--policy-dir", default=None, help="extra policy version files")
    r.add_argument("--expectations", default=None, help="GX suites folder (default expectations/)")
    r.add_argument("--work", default=None, help="scratch folder of the run (default $SUBSIDY_LEDGER_WORK or "
                                                 "<system temp>/subsidy-ledger-work); never inside --out")
    r.add_argument("--partitions", type=_count, default=None, metavar="K",
                   help="person partitions (default $SUBSIDY_LEDGER_PARTITIONS, else one per 250,000 persons); "
                        "every K gives the same answers")
    r.add_argument("--partition-workers", type=_count, default=None, metavar="N",
                   help="processes the partitions run in (default $SUBSIDY_LEDGER_PARTITION_WORKERS, else one "
                        "per core)")
    r.add_argument("--stage-processes", action=argparse.BooleanOptionalAction, default=None,
                   help="run each stage in a process of its own, as Airflow runs each task, so that no stage "
                        "starts with what the ones before it held (default $SUBSIDY_LEDGER_STAGE_PROCESSES, else "
                        "yes)")
    r.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another run of the same night and --out (default: refuse at once)")
    gates = r.add_argument_group("gates", "a night that looks wrong stops before anything is posted (exit 3)")
    gates.add_argument("--max-quarantine-share", type=_share, default=None,
                       help="stop when a registry quarantines more than this share of its rows "
                            "(default $SUBSIDY_LEDGER_MAX_QUARANTINE_SHARE or 0.10)")
    gates.add_argument("--max-row-loss-share", type=_share, default=None,
                       help="stop when a registry lost more than this share of last night's accepted rows "
                            "(default $SUBSIDY_LEDGER_MAX_ROW_LOSS_SHARE or 0.05)")
    gates.add_argument("--max-reversal-share", type=_share, default=None,
                       help="stop when the night would reverse more than this share of the active payouts "
                            "(default $SUBSIDY_LEDGER_MAX_REVERSAL_SHARE or 0.02)")
    gates.add_argument("--max-reversal-amount", type=_yuan, default=None, metavar="YUAN",
                       help="stop when the night would reverse more than this many yuan "
                            "(default $SUBSIDY_LEDGER_MAX_REVERSAL_AMOUNT or 1000000.00)")
    gates.add_argument("--accept-drop-change", action="append", default=[], metavar="REGISTRY",
                       help="let the night through what a gate found about this registry (or 'reversals'); "
                            "repeat for several; the warehouse records who accepted what")
    gates.add_argument("--accepted-by", default=None,
                       help="who accepts the change (default: the logged-in user)")
    return p


def _generate(args) -> int:
    from .generate import generate

    stats = generate(args.persons, args.seed, args.out)
    total = sum(stats.rows.values())
    print(f"wrote {total} rows for {args.persons} persons to {args.out}")
    for name, n in stats.rows.items():
        print(f"  {name:28s} {n:>10d}")
    return 0


def _change(args) -> int:
    from .generate import change

    changed = change(args.sources, args.out, args.share, args.seed)
    print(f"changed {sum(changed.values())} rows ({args.share:.1%} of each registry) into {args.out}")
    return 0


def _who() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no name
        return "unknown"


def _trace(args) -> int:
    from . import access, trace, warehouse

    if bool(args.payout_id) == bool(args.person):
        raise trace.TraceError("give a payout id or --person, not both")
    engine = warehouse.connect(args.warehouse)
    query = f"trace --person {args.person.strip().upper()}" if args.person else f"trace {args.payout_id.strip()}"
    shown: list = []
    try:
        with engine.begin() as conn:  # begin: the first person code makes the warehouse's key
            if args.person:
                result = trace.trace_person(conn, args.person.strip().upper())
                shown = [args.person.strip().upper()]
                text = trace.to_json(result) if args.json else trace.render_person(result)
            elif trace.PAYOUT_ID.match(args.payout_id.strip().upper()):
                result = trace.trace_payout(conn, args.payout_id.strip().upper())
                shown = [trace.person_of(conn, args.payout_id)]
                text = trace.to_json(result) if args.json else trace.render_payout(result)
            else:
                result, text, shown = _trace_reference(conn, args)
    finally:  # every lookup is logged, those that found nobody too
        with engine.begin() as conn:
            access.record(conn, _who(), "cli", query, shown)
        engine.dispose()
    print(text)
    return 0


def _reasons(args) -> int:
    from . import labels

    if args.markdown:
        print(labels.glossary_markdown(), end="")
    else:
        for r in labels.glossary().itertuples():
            print(f"{r.code:40s} {r.kind:9s} {r.zh}（{r.clause}）")
    return 0


def _trace_reference(conn, args) -> tuple[list, str, list]:
    """Every claim a reference names, whatever its outcome, traced."""
    import pandas as pd

    from . import identifiers, trace, warehouse

    key = warehouse.person_code_key(conn)
    people, persons = trace.find_claims(conn, args.payout_id, key)
    if not people:
        raise trace.TraceError(f"nothing in the warehouse answers to {args.payout_id.strip()!r}: no decision or "
                               "ledger line has that payout id, reference (certificate number, agreement, class "
                               "id), masked identity number or name")
    ids = sorted(persons)
    whose = dict(zip(identifiers.person_codes(pd.Series(ids, dtype="string"), key), ids, strict=True))
    result = [{"person_code": p["person_code"], "person_id_masked": p["person_id_masked"], "names": p["names"],
               "claims": [trace.trace_claim(conn, {"subsidy_type": c["subsidy_type"], "reference": c["reference"],
                                                   "person_id": whose[p["person_code"]]}) for c in p["claims"]]}
              for p in people]
    text = "\n\n".join(f"person {p['person_code']} {p['person_id_masked']} {' / '.join(p['names'])}\n"
                        + "\n\n".join(trace.render_claim(c) for c in p["claims"]) for p in result)
    return result, (trace.to_json(result) if args.json else text), ids


def _access_log(args) -> int:
    from . import access, export, warehouse

    engine = warehouse.connect(args.warehouse)
    try:
        with engine.connect() as conn:
            log = access.export(conn, dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end))
    finally:
        engine.dispose()
    if args.out:
        export.write_csv(log.assign(who=export.neutralise(log["who"]), query=export.neutralise(log["query"])),
                         args.out)
        print(f"{len(log)} lookups from {args.start} to {args.end} written to {args.out}")
    else:
        print(log.to_csv(index=False), end="")
    return 0


def _run(args) -> int:
    from . import pipeline, stage_process, warehouse
    gates = {k: v for k, v in {
        "max_quarantine_share": args.max_quarantine_share, "max_row_loss_share": args.max_row_loss_share,
        "max_reversal_share": args.max_reversal_share,
        "max_reversal_fen": None if args.max_reversal_amount is None else yuan_to_fen(args.max_reversal_amount),
        "work_dir": args.work, "partitions": args.partitions,
        "partition_workers": args.partition_workers}.items() if v is not None}
    cfg = pipeline.RunConfig(
        sources=str(args.sources), as_of=args.as_of, warehouse=warehouse.warehouse_url(args.warehouse),
        out=str(args.out), run_id=args.run_id or f"cli__{args.as_of}", expectations=args.expectations,
        policy_dir=args.policy_dir, accept_drop_change=tuple(args.accept_drop_change),
        accepted_by=args.accepted_by or (_who() if args.accept_drop_change else None), **gates)

    def report(name, result, seconds):
        print(f"{name:12s} {seconds:7.2f}s  {pipeline.describe(name, result)}", flush=True)

    call = stage_process.call if stage_process.wanted(args.stage_processes) else None
    results = pipeline.run(cfg, on_stage=report, wait_s=args.wait, call=call)
    print(f"extracts in {results['export']['extracts']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 on success, non-zero with a one-line reason otherwise."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("subsidy_ledger").setLevel(logging.DEBUG if args.debug else logging.WARNING)
    from .extract import DropError
    from .gate import DataQualityError
    from .ledger import LedgerBusyError
    from .pipeline import RunBusyError
    from .policy import PolicyError

    try:
        return {"generate": _generate, "change": _change, "run": _run, "trace": _trace,
                "access-log": _access_log, "reasons": _reasons}[args.command](args)
    except DropError as exc:
        print(f"error: {exc} (nothing was posted)", file=sys.stderr)
        return 2
    except DataQualityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (RunBusyError, LedgerBusyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (PolicyError, LookupError) as exc:
        print(f"error: {str(exc).strip(chr(39))}", file=sys.stderr)
        return 2
    except Exception as exc:  # a one-line reason, never a traceback, unless asked for
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
