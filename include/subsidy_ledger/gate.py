"""The gates a night passes before anything is posted: row quality, the drop's shape, and the reversals.

Pure functions over counts: the pipeline gathers the figures, these say whether the night looks wrong.
Each finding names what it is about (a registry, or `reversals`), so that an operator who knows the
change is real can accept exactly that and nothing else (`--accept-drop-change NAME`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .money import decimal_yuan

REVERSALS = "reversals"  # the name an operator accepts the reversal gate by


class DataQualityError(RuntimeError):
    """A gate found the night wrong: the run stops before posting (CLI exit 3, Airflow fails without retry)."""


@dataclass(frozen=True)
class Finding:
    """One reason to stop the night: what it is about and the figure, in one line."""

    subject: str  # a registry name, or REVERSALS
    message: str


@dataclass(frozen=True)
class RegistryFigures:
    """What the gate needs to know of one registry on one night."""

    name: str
    filename: str
    required: bool
    present: bool
    accepted: int
    problem: str | None = None  # why the file could not be read, for an optional one (directory, FIFO, ...)


def quality_findings(figures: list[dict], max_share: float, min_rows: int = 0) -> list[Finding]:
    """Registries of at least min_rows rows that quarantined more than max_share of them."""
    out = []
    for r in figures:
        if r["rows_in"] >= max(min_rows, 1) and r["quarantined"] / r["rows_in"] > max_share:
            out.append(Finding(r["registry"], f"{r['file_name']}: {r['quarantined']} of {r['rows_in']} rows "
                                              f"quarantined ({r['quarantined'] / r['rows_in']:.1%}), more than the "
                                              f"{max_share:.0%} allowed"))
    return out


def drop_findings(tonight: list[RegistryFigures], previous: dict[str, RegistryFigures] | None,
                  max_loss_share: float) -> list[Finding]:
    """Registries that look wrong against the previous accepted snapshot (None on the first night).

    Stops: an optional file that is there but unreadable; a required registry with no rows, first night
    included; a registry present last night that is absent tonight; one that lost more than max_loss_share
    of its accepted rows. An optional registry that never existed stays optional.
    """
    out = []
    for t in tonight:
        before = (previous or {}).get(t.name)
        if t.problem:
            out.append(Finding(t.name, f"{t.filename} {t.problem}"))
        elif t.required and t.accepted == 0:
            out.append(Finding(t.name, f"{t.filename} has no accepted rows (a required registry)"))
        elif before is not None and before.present and not t.present:
            out.append(Finding(t.name, f"{t.filename} was in last night's drop with {before.accepted} rows "
                                       f"and is absent tonight"))
        elif before is not None and before.accepted > 0:
            lost = before.accepted - t.accepted
            if lost > 0 and lost / before.accepted > max_loss_share:
                out.append(Finding(t.name, f"{t.filename} lost {lost} of its {before.accepted} accepted rows "
                                           f"({lost / before.accepted:.1%}), more than the {max_loss_share:.0%} "
                                           f"allowed"))
    return out


def reversal_findings(reversals: int, reversed_fen: int, active_payouts: int, max_share: float,
                      max_amount_fen: int) -> list[Finding]:
    """The night would reverse more than max_share of the active payouts, or more than max_amount_fen."""
    out = []
    if active_payouts and reversals / active_payouts > max_share:
        out.append(Finding(REVERSALS, f"the night would reverse {reversals} of {active_payouts} active payouts "
                                      f"({reversals / active_payouts:.1%}), more than the {max_share:.0%} allowed"))
    elif reversed_fen > max_amount_fen:
        out.append(Finding(REVERSALS, f"the night would reverse {decimal_yuan(reversed_fen)} yuan, more than "
                                      f"the {decimal_yuan(max_amount_fen)} yuan allowed"))
    return out


def split_accepted(findings: list[Finding], accepted: frozenset[str] | set[str]) -> tuple[list[Finding],
                                                                                           list[Finding]]:
    """(findings that still stop the night, findings an operator accepted)."""
    stop = [f for f in findings if f.subject not in accepted]
    return stop, [f for f in findings if f.subject in accepted]


def stop_message(gate: str, findings: list[Finding], hint: str) -> str:
    """The one line a stopped night prints: the gate, every figure, and what to do."""
    return f"{gate}: {'; '.join(f.message for f in findings)}; nothing was posted ({hint})"
