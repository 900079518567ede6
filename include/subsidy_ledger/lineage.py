"""Lineage: for every claim decided in a run, the source rows it rests on and the role each played.

The rules stay pure; this module repeats their joins to name the rows (registry, row number, key,
content hash, and the run whose GX validation accepted that content), so that an auditor can go from
any payout back to the drop without the drop.
"""

from __future__ import annotations

import pandas as pd

from .contract import HASH_COL, ROW_COL, record_keys
from .intervals import covering
from .registries import REGISTRIES

SOURCE_COLUMNS = ["subsidy_type", "reference", "person_id", "role", "registry", "source_row", "record_key",
                  "row_hash", "validated_run"]
CLAIM = ["subsidy_type", "reference", "person_id"]
_ROW = [ROW_COL, HASH_COL, "validated_run"]


def _rows(matched: pd.DataFrame, registry: str, role: str) -> pd.DataFrame:
    """Source rows in SOURCE_COLUMNS form; matched holds the claim key columns and the registry's row."""
    if matched.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    return pd.DataFrame({
        "subsidy_type": _text(matched["subsidy_type"]), "reference": _text(matched["reference"]),
        "person_id": _text(matched["person_id"]), "role": role, "registry": registry,
        "source_row": matched[ROW_COL].astype("int64").to_numpy(),
        "record_key": _text(record_keys(matched, REGISTRIES[registry])),
        "row_hash": _text(matched[HASH_COL]), "validated_run": _text(matched["validated_run"]),
    })


def _text(s: pd.Series):
    """A text column's values without its index, kept in Arrow: through numpy's objects and back was a fifth
    of the claim sources' time (2.7 million rows a 1,000,000-person night, six text columns)."""
    return s.astype("str").array


def _source(stg: dict[str, pd.DataFrame], registry: str, *cols: str) -> pd.DataFrame:
    """A registry's rows with only cols and what a source row names (row, hash, validating run, key): a join
    then carries no other column (a certificate's issuer, an episode's employer name) into every claim's row."""
    return stg[registry][list(dict.fromkeys([*cols, *REGISTRIES[registry].key, *_ROW]))]


def _covering(claims, date_col, records, registry, start, end, keep=()):
    pairs = covering(claims, date_col, records, start, end, keep=(*_ROW, *REGISTRIES[registry].key, *keep))
    pairs = pairs.drop(columns=["person_id"]).join(claims[CLAIM], on="event")
    return pairs


def certificate_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """Rows behind R1-R3 decisions: the certificate, the episodes and group records on its issue date,
    the person's earlier insurance episodes (insured months), city payouts and the uplift listing and
    special-ability catalog rows that apply. R1 reads no class or roster (revision 2)."""
    certs = _source(stg, "certificates", "person_id", "issued_on", "certificate_type", "occupation_code", "level")
    c = decided[CLAIM].merge(certs, left_on=["reference", "person_id"], right_on=["certificate_no", "person_id"])
    c = c.reset_index(drop=True)
    parts = [_rows(c, "certificates", "certificate")]
    episodes = _covering(c, "issued_on", stg["social_insurance"], "social_insurance", "start_date", "end_date",
                         keep=("employer_credit_code",))
    parts.append(_rows(episodes, "social_insurance", "insurance_episode"))
    for registry, role, start, end in (("unemployment_registrations", "unemployment_registration", "registered_on",
                                        "ended_on"), ("low_income", "low_income_record", "valid_from", "valid_to"),
                                       ("veterans", "veteran_record", "discharged_on", None)):
        parts.append(_rows(_covering(c, "issued_on", stg[registry], registry, start, end), registry, role))
    earlier = c[[*CLAIM, "issued_on"]].merge(_source(stg, "social_insurance", "person_id", "start_date", "end_date"),
                                             on="person_id")
    earlier = earlier.loc[(earlier["start_date"] <= earlier["issued_on"])
                          & ~(earlier["end_date"] >= earlier["issued_on"]).fillna(True)]
    parts.append(_rows(earlier, "social_insurance", "earlier_insurance_episode"))
    city = stg["city_payouts"]
    by_no = c[[*CLAIM, "certificate_no"]].merge(city.drop(columns=["person_id"]), on="certificate_no")
    by_slot = c[[*CLAIM, "occupation_code", "level"]].merge(city, on=["person_id", "occupation_code", "level"])
    parts += [_rows(by_no, "city_payouts", "city_payout"), _rows(by_slot, "city_payouts", "city_payout")]
    listed = episodes[[*CLAIM, "event", "employer_credit_code"]].merge(stg["affected_enterprises"],
                                                                       on="employer_credit_code")
    listed = listed.loc[listed["listed_on"].to_numpy() <= c["issued_on"].reindex(listed["event"]).to_numpy()]
    parts.append(_rows(listed, "affected_enterprises", "affected_enterprise"))
    special = c.loc[c["certificate_type"] == "special_ability",
                    [*CLAIM, "certificate_type", "occupation_code", "issued_on"]]
    cat = special.merge(stg["subsidy_catalog"], on=["certificate_type", "occupation_code"])
    cat = cat.loc[(cat["effective_from"] <= cat["issued_on"])
                  & (cat["issued_on"] <= cat["effective_to"].fillna(pd.Timestamp.max))]
    parts.append(_rows(cat, "subsidy_catalog", "catalog_row"))
    return _concat(parts)


def apprentice_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """Rows behind R4/R5 decisions: the agreement and, for R4, the person's episodes with its employer."""
    d = decided[CLAIM].assign(agreement_id=decided["reference"].str.rsplit("#", n=1).str[0])
    rows = d.merge(_source(stg, "apprenticeships", "person_id", "employer_credit_code"),
                   on=["agreement_id", "person_id"])
    employee = rows.loc[rows["subsidy_type"] == "apprentice_employee", [*CLAIM, "employer_credit_code"]]
    episodes = employee.merge(_source(stg, "social_insurance", "person_id", "employer_credit_code"),
                              on=["person_id", "employer_credit_code"])
    return _concat([_rows(rows, "apprenticeships", "agreement"),
                    _rows(episodes, "social_insurance", "employment_episode")])


def living_allowance_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """Rows behind R6 decisions: the roster entry, the class, low-income records on its start date, the
    school-leaver record and the household's records valid then."""
    d = decided[CLAIM].assign(class_id=decided["reference"]).reset_index(drop=True)
    roster = d.merge(_source(stg, "class_enrollments"), on=["class_id", "person_id"])
    cls = d.merge(_source(stg, "training_classes"), on="class_id")
    starts = d.merge(stg["training_classes"][["class_id", "start_date"]], on="class_id").reset_index(drop=True)
    low = _covering(starts, "start_date", stg["low_income"], "low_income", "valid_from", "valid_to")
    leavers = starts.merge(_source(stg, "school_leavers", "person_id", "graduated_on"), on="person_id")
    leavers = leavers.loc[leavers["graduated_on"] <= leavers["start_date"]]
    homes = stg["low_income"][["person_id", "household_id"]].dropna().drop_duplicates()
    household = leavers[[*CLAIM, "start_date"]].drop_duplicates().merge(homes, on="person_id").merge(
        stg["low_income"].drop(columns=["person_id"]), on="household_id")
    household = household.loc[(household["valid_from"] <= household["start_date"])
                              & ~(household["valid_to"] < household["start_date"]).fillna(False)]
    return _concat([_rows(roster, "class_enrollments", "roster_entry"),
                    _rows(cls, "training_classes", "training_class"),
                    _rows(low, "low_income", "low_income_record"),
                    _rows(leavers, "school_leavers", "school_leaver"),
                    _rows(household, "low_income", "household_record")])


def training_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """Rows behind R7 decisions: the roster entry, the class filing, its project filing, the institution's
    qualification on the class start, the catalog row when no project prices it, and the uplift's episode and
    listing on the class start."""
    d = decided[CLAIM].assign(class_id=decided["reference"]).reset_index(drop=True)
    roster = d.merge(_source(stg, "class_enrollments"), on=["class_id", "person_id"])
    cls = d.merge(_source(stg, "training_classes", "project_id", "institution_credit_code", "start_date",
                          "occupation_code", "level"), on="class_id")
    facts = cls[[*CLAIM, "project_id", "institution_credit_code", "start_date", "occupation_code", "level"]]
    project = facts.dropna(subset=["project_id"]).merge(_source(stg, "training_projects"), on="project_id")
    inst = facts.merge(_source(stg, "training_institutions", "qualified_to"), on="institution_credit_code")
    inst = inst.loc[(inst["qualified_from"] <= inst["start_date"])
                    & ~(inst["qualified_to"] < inst["start_date"]).fillna(False)]
    unpriced = facts.loc[~facts["project_id"].isin(stg["training_projects"]["project_id"])].reset_index(drop=True)
    catalog = stg["subsidy_catalog"]
    kind = pd.Series("special_ability", index=catalog.index).where(catalog["level"].isna(), "levelled")
    cat = unpriced.assign(kind=pd.Series("special_ability", index=unpriced.index).where(
        unpriced["level"].isna(), "levelled")).merge(catalog.assign(kind=kind), on=["occupation_code", "kind"],
                                                     suffixes=("", "_cat"))
    cat = cat.loc[(cat["level"].astype("string").fillna("") == cat["level_cat"].astype("string").fillna(""))
                  & (cat["effective_from"] <= cat["start_date"])
                  & ~(cat["effective_to"] < cat["start_date"]).fillna(False)]
    starts = facts[[*CLAIM, "start_date"]].reset_index(drop=True)
    episodes = _covering(starts, "start_date", stg["social_insurance"], "social_insurance", "start_date",
                         "end_date", keep=("employer_credit_code",))
    listed = episodes[[*CLAIM, "employer_credit_code", "event"]].merge(stg["affected_enterprises"],
                                                                      on="employer_credit_code")
    listed = listed.loc[listed["listed_on"].to_numpy() <= starts["start_date"].reindex(listed["event"]).to_numpy()]
    return _concat([_rows(roster, "class_enrollments", "roster_entry"),
                    _rows(cls, "training_classes", "training_class"),
                    _rows(project, "training_projects", "project_filing"),
                    _rows(inst, "training_institutions", "institution_qualification"),
                    _rows(cat, "subsidy_catalog", "catalog_row"),
                    _rows(episodes, "social_insurance", "insurance_episode"),
                    _rows(listed, "affected_enterprises", "affected_enterprise")])


# a source row is one claim's once per role: its key, hash and validating run follow from registry and row number
_SOURCE_ROW = ["subsidy_type", "reference", "person_id", "role", "registry", "source_row"]


def _concat(parts: list[pd.DataFrame], distinct: bool = True) -> pd.DataFrame:
    """The parts' source rows as one frame, each once (distinct=False: the parts are known not to overlap)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    return (out.drop_duplicates(subset=_SOURCE_ROW, ignore_index=True) if distinct else out)[SOURCE_COLUMNS]


def objection_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """P2: the objections lodged against each claim (whatever their outcome)."""
    return _rows(decided[CLAIM].merge(_source(stg, "objections", *CLAIM), on=CLAIM), "objections", "objection")


def claim_sources(stg: dict[str, pd.DataFrame], decided: pd.DataFrame) -> pd.DataFrame:
    """Every source row of every claim in `decided` (decisions made in this run)."""
    kind = decided["subsidy_type"]
    # the parts name different subsidy types (the objections their own role), and each is distinct already
    parts = [
        objection_sources(stg, decided),
        certificate_sources(stg, decided.loc[kind.isin(["skill_upgrade", "special_ability"])]),
        apprentice_sources(stg, decided.loc[kind.isin(["apprentice_employee", "apprentice_student"])]),
        living_allowance_sources(stg, decided.loc[kind == "living_allowance"]),
        training_sources(stg, decided.loc[kind == "training_subsidy"]),
    ]
    return _concat(parts, distinct=False)
