"""Who may look up whom, and the record of every lookup (PIPL: access to personal data is logged).

Viewers: an Airflow user name is mapped to the departments it may see, through
$SUBSIDY_LEDGER_USER_DEPARTMENTS, a JSON object such as
`{"audit_wang": "*", "clerk_li": "AGRI", "clerk_zhao": ["ECON", "EDU"]}` ("*" = every department, an
auditor). A user the map does not name sees nothing. The same names work with Airflow's simple auth manager
and with FAB (docs/privacy.md).

Access log: `access_log` in the warehouse, append-only like the ledger (the database refuses UPDATE and
DELETE): who, when, through what (page API or `trace`), the query, and the persons shown.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from .contract import mask_ids_in_text, mask_resident_id
from .warehouse import access_log

USER_DEPARTMENTS_ENV = "SUBSIDY_LEDGER_USER_DEPARTMENTS"
ALL = "*"


class AccessDenied(PermissionError):
    """The user is not mapped to any department."""


@dataclass(frozen=True)
class Viewer:
    """A logged-in user and the departments they may see (None: all of them)."""

    name: str
    departments: frozenset[str] | None

    def sees(self, department: str | None) -> bool:
        """True when a row of this department may be shown to the viewer."""
        return self.departments is None or department in self.departments

    @property
    def scope(self) -> str:
        """The departments as recorded in the access log."""
        return ALL if self.departments is None else ",".join(sorted(self.departments))


def user_name(user) -> str:
    """The login name of an Airflow user object (simple auth manager or FAB), or the value itself."""
    get = getattr(user, "get_name", None)
    return str(get() if callable(get) else getattr(user, "username", user))


def load_mapping(text: str | None = None) -> dict[str, frozenset[str] | None]:
    """User name -> departments (None for all) from the JSON in $SUBSIDY_LEDGER_USER_DEPARTMENTS."""
    raw = json.loads(text if text is not None else os.environ.get(USER_DEPARTMENTS_ENV) or "{}")
    out = {}
    for name, depts in raw.items():
        listed = [depts] if isinstance(depts, str) else list(depts)
        out[str(name)] = None if ALL in listed else frozenset(d.upper() for d in listed)
    return out


def viewer_for(user, mapping: dict[str, frozenset[str] | None] | None = None) -> Viewer:
    """The Viewer of a logged-in user; AccessDenied when the map does not name them."""
    name = user_name(user)
    mapping = load_mapping() if mapping is None else mapping
    if name not in mapping:
        raise AccessDenied(f"user {name!r} is not assigned to any department; ask the administrator to add "
                           f"them to {USER_DEPARTMENTS_ENV}")
    return Viewer(name, mapping[name])


def record(conn, who: str, channel: str, query: str, persons, scope: str = ALL) -> None:
    """Append one lookup to the access log (inside the caller's transaction)."""
    shown = sorted({p for p in persons if p})
    conn.execute(access_log.insert().values(
        accessed_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), who=who[:250], channel=channel,
        query=query[:500], scope=scope, persons_shown=len(shown), persons=";".join(shown)))


def export(conn, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The access log between two dates (inclusive), identity numbers masked, for auditors."""
    lo = dt.datetime.combine(start, dt.time())
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    t = access_log
    rows = conn.execute(sa.select(t).where(t.c.accessed_at >= lo, t.c.accessed_at < hi).order_by(t.c.log_id))
    log = pd.DataFrame(rows.mappings().all(), columns=[c.name for c in t.columns])
    masked = [";".join(mask_resident_id(pd.Series(p.split(";") if p else [], dtype="string")).dropna())
              for p in log["persons"].fillna("")]
    return pd.DataFrame({"accessed_at_utc": log["accessed_at"].astype("string").str.slice(0, 19),
                         "who": log["who"], "channel": log["channel"],
                         "query": mask_ids_in_text(log["query"].astype("string")), "scope": log["scope"],
                         "persons_shown": log["persons_shown"].astype("int64"), "persons_masked": masked})
