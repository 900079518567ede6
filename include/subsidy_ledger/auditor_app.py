"""The auditors' page: find every decision (approved, rejected, held) by certificate, reference, payout id,
masked identity number with the name, or name; show each claim's facts, clause, publicity, payment and history.

A FastAPI app that the Airflow plugin in plugins/ mounts under /auditor. Every route, page and API alike,
depends on `authenticate`, which the plugin wires to Airflow's own JWT check: plugin endpoints get no
protection from Airflow by themselves. The logged-in user sees only the departments subsidy_ledger.access
maps them to (auditors: all), and every lookup is appended to the warehouse's access_log.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from . import access, trace, warehouse

PAGE = (Path(__file__).parent / "templates" / "auditor.html")
AIRFLOW_LOGIN = "/api/v2/auth/login"  # Airflow 3's redirect to its auth manager's login page
SENTENCES = {  # what a person reads when something is refused (Chinese, then English)
    401: "请先登录 Airflow。Please log in to Airflow first.",
    403: "您的账号未获授权查看补贴台账，请联系管理员。Your account is not allowed to see the subsidy ledger.",
    422: "查询内容无效：请输入至少2个字符（证书编号、协议号、培训班编号、支付编号、脱敏身份证号加姓名或姓名）。"
         "The query must have at least 2 characters.",
}


def _engine_factory(url: Callable[[], str]):
    engines: dict[str, sa.Engine] = {}

    def get() -> sa.Engine:
        u = url()
        if u not in engines:
            engines[u] = warehouse.connect(u)
        return engines[u]
    return get


def _links(t: dict, prefix: str) -> dict:
    """Airflow run and Data Docs links for a trace."""
    run = t.get("posted_by_run") or t["decided_by_run"]
    t["links"] = {"airflow_run": (f"/dags/{quote(run['dag_id'])}/runs/{quote(run['run_id'], safe='')}"
                                  if run.get("dag_id") else None)}
    for s in t["sources"]:
        gx = s.get("accepted_by_gx") or {}
        docs = gx.get("data_docs")
        if docs and "/data_docs/" in docs:
            s["data_docs_url"] = f"{prefix}/data_docs/{docs.split('/data_docs/', 1)[1]}"
    return t


def viewer_dependency(authenticate: Callable, viewer_for: Callable) -> Callable:
    """A FastAPI dependency: the logged-in user (401 from `authenticate`) as an access.Viewer, 403 if unmapped."""
    # plain Depends defaults: this module's postponed annotations could not see the local `authenticate`
    def viewer(user=Depends(authenticate)) -> access.Viewer:  # noqa: B008
        try:
            return viewer_for(user)
        except access.AccessDenied as exc:
            raise HTTPException(status_code=403, detail=str(exc)) from None
    return viewer


def _login_redirect(next_url: str) -> str:
    return f"{AIRFLOW_LOGIN}?next={quote(next_url, safe='')}"


def create_app(warehouse_url: Callable[[], str], out_dir: Callable[[], str | None],
               authenticate: Callable, prefix: str = "/auditor",
               viewer_for: Callable = access.viewer_for, login_url: Callable[[str], str] = _login_redirect) -> FastAPI:
    """The auditors' app; `authenticate` is a FastAPI dependency that raises 401/403 for strangers, and
    viewer_for(user) says which departments that user may see (AccessDenied: none). A stranger opening the
    page is sent to login_url(the page's address); the API answers every refusal with a sentence."""
    engine = _engine_factory(warehouse_url)
    viewer = viewer_dependency(authenticate, viewer_for)
    app = FastAPI(title="Subsidy ledger auditor", dependencies=[Depends(viewer)])

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        """A stranger opening a page goes to Airflow's login; the API says what went wrong in a sentence."""
        api = "/api/" in request.url.path
        if exc.status_code == 401 and not api:
            return RedirectResponse(login_url(str(request.url)), status_code=303)
        detail = exc.detail if exc.status_code == 404 else SENTENCES.get(exc.status_code, str(exc.detail))
        if not api:
            return HTMLResponse(f"<!doctype html><meta charset=utf-8><title>补贴台账审计</title>"
                                f"<p>{html.escape(str(detail))}</p>", status_code=exc.status_code)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        """A malformed query is a sentence too, never a validation dump."""
        return JSONResponse({"detail": SENTENCES[422]}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        """The search page."""
        return PAGE.read_text("utf-8")

    @app.get("/api/search")
    def api_search(q: str = Query(min_length=2, max_length=64), who=Depends(viewer)) -> dict:  # noqa: B008
        """Every claim q names in the viewer's departments, grouped by person."""
        with engine().begin() as conn:
            people, persons = trace.find_claims(conn, q, warehouse.person_code_key(conn), departments=who.departments)
            access.record(conn, who.name, "api", f"search {q}", persons, who.scope)
        message = None if people else (
            f"没有找到与“{q.strip()}”相符的申领或支付记录。Nothing in the ledger or the decisions matches "
            f"{q.strip()!r}: a certificate number, agreement (or agreement#k), class id, payout id, masked "
            "identity number with the name, or a name is searched, in your departments only.")
        return {"query": q.strip(), "people": people, "message": message}

    @app.get("/api/claim")
    def api_claim(subsidy_type: str = Query(max_length=40), reference: str = Query(max_length=128),  # noqa: B008
                  person_code: str = Query(max_length=20), who=Depends(viewer)) -> dict:  # noqa: B008
        """The chain behind one claim, approved, rejected or held, if it is in the viewer's departments."""
        claim = {"subsidy_type": subsidy_type, "reference": reference}
        shown, found = [], None
        with engine().begin() as conn:
            person = trace.person_for_code(conn, claim, person_code, warehouse.person_code_key(conn))
            if person is not None:
                found = trace.trace_claim(conn, claim | {"person_id": person})
                depts = {h["department_code"] for h in found["history"]} | (
                    {found["decision"]["department_code"]} if found["decision"] else set())
                if any(who.sees(d) for d in depts):
                    shown = [person]
            access.record(conn, who.name, "api", f"claim {subsidy_type} {reference} {person_code}", shown, who.scope)
        if not shown:
            raise HTTPException(status_code=404, detail=f"在您的部门中没有找到该申领。No claim {subsidy_type} "
                                                        f"{reference} of {person_code} in your departments.")
        return _links(found, prefix)

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
            raise HTTPException(status_code=404, detail=f"在您的部门中没有支付编号 {payout_id}。No payout "
                                                        f"{payout_id} in your departments.")
        return _links(found, prefix)

    @app.get("/data_docs/{path:path}")
    def data_docs(path: str) -> FileResponse:
        """A file of a run's GX Data Docs, from under <out>/data_docs only."""
        root = out_dir()
        if not root:
            raise HTTPException(status_code=404, detail="未配置输出目录。The extracts folder is not configured.")
        base = (Path(root) / "data_docs").resolve()
        target = (base / path).resolve()
        if base not in target.parents or not target.is_file():
            raise HTTPException(status_code=404, detail="没有该数据质量报告文件。No such Data Docs file.")
        return FileResponse(target)

    return app
