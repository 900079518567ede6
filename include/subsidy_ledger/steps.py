"""What each step of a night reads and writes, declared once.

The OpenLineage datasets of every task (lineage_events) and the clean-up of the work store (pipeline) derive
from these declarations, so that a step's inputs are spelled in one place. Names:

* `drop`: the registry files (or database) of the night;
* `table:<name>`: a warehouse table;
* `work:<folder>`: a folder of the run's work store (full identity numbers: removed as soon as no later step
  reads it, and whatever is left when the run ends);
* `out:<path>`: a file or folder under the night's extracts folder, `bank`: the night's bank instruction files.

The steps are in the order a night runs them. The CLI's `eligibility` and `decide` stages run the steps from
their split to the step of their own name; Airflow runs every step as a task of its own (the `_part` steps
mapped over the partitions).
"""

from __future__ import annotations

from dataclasses import dataclass

from .registries import REGISTRIES


@dataclass(frozen=True)
class Step:
    """One step of a night and the datasets it reads and writes."""

    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    mapped: bool = False  # run once per person partition (Airflow: mapped task instances, side by side)


def staging(*names: str) -> tuple[str, ...]:
    """The staging tables of these registries (all of them without names)."""
    return tuple(f"table:{REGISTRIES[n].table}" for n in (names or REGISTRIES))


STAGING = staging()
ELIGIBILITY = ("table:int_certificate_eligibility", "table:int_apprentice_eligibility",
               "table:int_living_allowance_eligibility", "table:int_training_eligibility")
# the rules and their lineage read every registry but the bank's (accounts, results: pay's) and the annual
# plans (A1's, export's); the payee accounts are the largest registry by rows
RULE_REGISTRIES = staging(*(n for n in REGISTRIES if n not in ("payee_accounts", "payment_results",
                                                               "annual_plans")))
# what export reads of the accepted registries: A1's measures (classes, rosters, apprenticeships, insurance,
# certificates, plans), the funding extract's projects and supervision's classes, rosters and certificates
EXPORT_REGISTRIES = staging("training_classes", "class_enrollments", "apprenticeships", "social_insurance",
                            "certificates", "annual_plans", "training_projects")
PAY_REGISTRIES = staging("payment_results", "training_classes", "payee_accounts", "training_institutions")

STEPS = (
    Step("extract", ("drop",), ("work:raw", "table:runs")),
    # the raw rows are the drop's rows as extract read them: GX's verdicts are the drop files'
    Step("validate", ("drop", "work:raw", "table:payment_instructions"),
         (*STAGING, "work:accepted", "table:quarantine", "table:reconciliation", "table:validation_results")),
    # a step that reads `work:accepted` reads the registries whose staging tables it names (the warehouse's
    # rows when the work store's copy is gone): accepted_registries
    Step("eligibility_split", ("work:accepted", *RULE_REGISTRIES), ("work:eligibility",)),
    Step("eligibility_part", ("work:eligibility",), ("work:eligibility",), mapped=True),
    Step("eligibility", ("work:eligibility",), ELIGIBILITY),
    # decide reads the eligibility step's partitions as they are (accepted registries, eligibility tables); when
    # they are gone, decide_split cuts them again from the warehouse's staging and eligibility tables
    Step("decide_split", ("work:eligibility", "work:accepted", *RULE_REGISTRIES, *ELIGIBILITY,
                          "table:ledger_lines", "table:quarantine"),
         ("work:eligibility", "work:decide")),
    Step("training_part", ("work:eligibility", "work:decide"), ("work:decide",), mapped=True),
    Step("training_budget", ("work:eligibility", "work:decide"), ("work:decide",)),
    Step("decisions_part", ("work:eligibility", "work:decide"), ("work:decide",), mapped=True),
    # post and export read the decisions from the work store's copy (the warehouse's when it is gone)
    Step("decide", ("work:decide",), ("table:decisions", "table:claim_sources", "table:city_overlaps",
                                      "work:decisions")),
    Step("post", ("work:decisions", "table:decisions", "table:publicity", "table:ledger_lines"),
         ("table:ledger_lines", "table:publicity")),
    Step("pay", ("table:ledger_lines", "work:accepted", *PAY_REGISTRIES),
         ("table:payment_instructions", "table:payment_outcomes", "bank")),
    Step("export", ("table:ledger_lines", "work:decisions", "table:decisions", "table:reconciliation",
                    "table:quarantine", "table:city_overlaps", "table:publicity", "table:payment_instructions",
                    "table:payment_outcomes", "work:accepted", *EXPORT_REGISTRIES),
         ("out:summary.csv", "out:reconciliation.csv", "out:quarantine.csv", "out:payments_reconciliation.csv",
          "out:assessment/behind_plan.csv", "bank", "table:assessment")),
)
BY_NAME = {s.name: s for s in STEPS}


def spent_work(done: str) -> list[str]:
    """The work folders written up to step `done` (included) that no later step reads: safe to remove. A mapped
    step's own reads are never among them: its sibling partitions may still be reading them."""
    names = [s.name for s in STEPS]
    cut = names.index(done) + 1
    written = {w for s in STEPS[:cut] for w in s.writes if w.startswith("work:")}
    later = STEPS[cut - 1:] if BY_NAME[done].mapped else STEPS[cut:]
    needed = {r for s in later for r in s.reads}
    return sorted(w.split(":", 1)[1] for w in written - needed)


def accepted_registries(step: str) -> tuple[str, ...]:
    """The registries whose accepted rows a step reads: those whose staging tables it declares."""
    reads = set(BY_NAME[step].reads)
    return tuple(n for n, r in REGISTRIES.items() if f"table:{r.table}" in reads)
