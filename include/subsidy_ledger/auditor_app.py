"""The auditors' page: search a payout, certificate number or masked person id; show its chain and history.

A FastAPI app that the Airflow plugin in plugins/ mounts under /auditor. Every route, page and API alike,
depends on `authenticate`, which the plugin wires to Airflow's own JWT check: plugin endpoints get no
protection from Airflow by themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, HTMLResponse

from . import trace, warehouse

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


def search(conn, q: str, limit: int = 200) -> list[dict]:
    """Ledger lines matching a payout id, a reference (certificate number, agreement#k, class id) or a
    masked person id."""
    t = warehouse.ledger_lines
    q = q.strip()
    m = MASKED_ID.match(q.upper())
    if m:
        cond = (t.c.person_id.like(f"{m.group(1)}%")) & (t.c.person_id.like(f"%{m.group(2)}"))
    else:
        cond = (t.c.payout_id == q.upper()) | (t.c.reference == q)
    rows = conn.execute(sa.select(t).where(cond).order_by(t.c.seq).limit(limit)).mappings().all()
    return [{"payout_id": r["payout_id"], "entry_type": r["entry_type"], "posted_on": str(r["posted_on"])[:10],
             "amount": trace.to_yuan(int(r["amount_fen"])), "subsidy_type": r["subsidy_type"],
             "reference": r["reference"], "person_id_masked": trace.mask(r["person_id"]),
             "department_code": r["department_code"]} for r in rows]


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
               authenticate: Callable, prefix: str = "/auditor") -> FastAPI:
    """The auditors' app; `authenticate` is a FastAPI dependency that raises 401/403 for strangers."""
    app = FastAPI(title="Subsidy ledger auditor", dependencies=[Depends(authenticate)])
    engine = _engine_factory(warehouse_url)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        """The search page."""
        return PAGE.read_text("utf-8")

    @app.get("/api/search")
    def api_search(q: str = Query(min_length=3, max_length=64)) -> list[dict]:
        """Payouts matching q."""
        with engine().connect() as conn:
            return search(conn, q)

    @app.get("/api/trace/{payout_id}")
    def api_trace(payout_id: str) -> dict:
        """The chain behind one payout."""
        with engine().connect() as conn:
            try:
                return _links(trace.trace_payout(conn, payout_id.strip().upper()), prefix)
            except trace.TraceError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from None

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
