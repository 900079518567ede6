"""The auditors' page: search a payout, certificate number or masked person id; show its chain and history.

A FastAPI app that the Airflow plugin in plugins/ mounts under /auditor. Every route, page and API alike,
depends on `authenticate`, which the plugin wires to Airflow's own JWT check: plugin endpoints get no
protection from Airflow by themselves. The logged-in user sees only the departments subsidy_ledger.access
maps them to (auditors: all), and every lookup is appended to the warehouse's access_log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from . import access, trace, warehouse

MASKED_ID = re.compile(r"^([0-9]{6})\*{8}([0-9]{3}[0-9X])$")
PAGE = (Path(__file__).parent / "templates" / "auditor.html")


def _engine_factory(url: Callable[[], str]):
    engines: dict[str, sa.Engine] = {}

    def get() -> sa.Engine:
        u = url()
        if u not in engines:
            engines[u] = warehouse.connect(u)
        return engines[u]
    return get


def search(conn, q: str, limit: int = 200,
           departments: frozenset[str] | None = None) -> tuple[list[dict], set[str]]:
    """Ledger lines matching a payout id, a reference (certificate number, agreement#k, class id) or a
    masked person id, within the given departments (None: all); and the persons they show."""
    t = warehouse.ledger_lines
    q = q.strip()
    m = MASKED_ID.match(q.upper())
    if m:
        cond = (t.c.person_id.like(f"{m.group(1)}%")) & (t.c.person_id.like(f"%{m.group(2)}"))
    else:
        cond = (t.c.payout_id == q.upper()) | (t.c.reference == q)
    if departments is not None:
        cond = cond & t.c.department_code.in_(sorted(departments))
    rows = conn.execute(sa.select(t).where(cond).order_by(t.c.seq).limit(limit)).mappings().all()
    hits = [{"payout_id": r["payout_id"], "entry_type": r["entry_type"], "posted_on": str(r["posted_on"])[:10],
             "amount": trace.to_yuan(int(r["amount_fen"])), "subsidy_type": r["subsidy_type"],
             "reference": r["reference"], "person_id_masked": trace.mask(r["person_id"]),
             "department_code": r["department_code"]} for r in rows]
    return hits, {r["person_id"] for r in rows}


def _links(t: dict, prefix: str) -> dict:
    """Airflow run and Data Docs links for a trace."""
    run = t["posted_by_run"]
    t["links"] = {"airflow_run": (f"/dags/{quote(run['dag_id'])}/runs/{quote(run['run_id'], safe='')}"
                                  if run.get("dag_id") else None)}
    for s in t["sources"]:
        gx = s.get("accepted_by_gx") or {}
        docs = gx.get("data_docs")
        if docs and "/data_docs/" in docs:
            s["data_docs_url"] = f"{prefix}/data_docs/{docs.split('/data_docs/', 1)[1]}"
    return t


def create_app(warehouse_url: Callable[[], str], out_dir: Callable[[], str | None],
               authenticate: Callable, prefix: str = "/auditor",
               viewer_for: Callable = access.viewer_for) -> FastAPI:
    """The auditors' app; `authenticate` is a FastAPI dependency that raises 401/403 for strangers, and
    viewer_for(user) says which departments that user may see (AccessDenied: none)."""
    engine = _engine_factory(warehouse_url)

    # plain Depends defaults: this module's postponed annotations could not see the local `authenticate`
    def viewer(user=Depends(authenticate)) -> access.Viewer:  # noqa: B008
        try:
            return viewer_for(user)
        except access.AccessDenied as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None

    app = FastAPI(title="Subsidy ledger auditor", dependencies=[Depends(viewer)])

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        """The search page."""
        return PAGE.read_text("utf-8")

    @app.get("/api/search")
    def api_search(q: str = Query(min_length=3, max_length=64), who=Depends(viewer)) -> list[dict]:  # noqa: B008
        """Payouts matching q, in the viewer's departments."""
        with engine().begin() as conn:
            hits, persons = search(conn, q, departments=who.departments)
            access.record(conn, who.name, "api", f"search {q}", persons, who.scope)
        return hits

    @app.get("/api/trace/{payout_id}")
    def api_trace(payout_id: str, who=Depends(viewer)) -> dict:  # noqa: B008
        """The chain behind one payout, if it is in the viewer's departments."""
        found, shown = None, []
        with engine().begin() as conn:
            try:
                found = trace.trace_payout(conn, payout_id.strip().upper())
            except trace.TraceError:
                found = None
            if found is not None and who.sees(found["payout"]["department_code"]):
                shown = [trace.person_of(conn, payout_id)]
            access.record(conn, who.name, "api", f"trace {payout_id}", shown, who.scope)  # found or not
        if not shown:  # another department's payout looks like no payout at all
            raise HTTPException(status_code=404, detail=f"no payout {payout_id} in your departments")
        return _links(found, prefix)

    @app.get("/data_docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        """A file of a run's GX Data Docs, from under <out>/data_docs only."""
        root = out_dir()
        if not root:
            raise HTTPException(status_code=404, detail="the extracts folder is not configured")
        base = (Path(root) / "data_docs").resolve()
        target = (base / path).resolve()
        if base not in target.parents or not target.is_file():
            raise HTTPException(status_code=404, detail="no such Data Docs file")
        return FileResponse(target)

    return app
