"""The leading group's page (职业技能提升行动考核): A1's figures and charts for any night the warehouse assessed.

A FastAPI app that the Airflow plugin in plugins/ mounts under /assessment, behind the same login as the auditors'
page (`authenticate` is Airflow's JWT check). The figures are district totals, never a person; any user that
subsidy_ledger.access lets see the ledger may open it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from . import access, assessment_report, pipeline
from .auditor_app import SENTENCES, _engine_factory, _login_redirect, viewer_dependency

TITLE = "职业技能提升行动考核"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{assessment_report.STYLE}</style></head><body>{body}</body></html>")


def _picker(days: list[dt.date], chosen: dt.date | None) -> str:
    options = "".join(f"<option value=\"{d.isoformat()}\"{' selected' if d == chosen else ''}>{d.isoformat()}</option>"
                      for d in days)
    return (f"<form method=\"get\" action=\"\"><label>统计截止日期 as of <select name=\"as_of\" id=\"as_of\">"
            f"{options}</select></label> <button type=\"submit\">查看 show</button></form>")


def create_app(warehouse_url: Callable[[], str], authenticate: Callable,
               viewer_for: Callable = access.viewer_for, login_url: Callable[[str], str] = _login_redirect) -> FastAPI:
    """The leading group's app; a stranger is sent to login_url(the page's address)."""
    engine = _engine_factory(warehouse_url)
    app = FastAPI(title="Subsidy ledger assessment",
                  dependencies=[Depends(viewer_dependency(authenticate, viewer_for))])

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        """A stranger goes to Airflow's login; any other refusal is a sentence."""
        if exc.status_code == 401:
            return RedirectResponse(login_url(str(request.url)), status_code=303)
        detail = exc.detail if exc.status_code == 404 else SENTENCES.get(exc.status_code, str(exc.detail))
        return HTMLResponse(_page(TITLE, f"<p>{html.escape(str(detail))}</p>"), status_code=exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def page(as_of: str | None = Query(default=None, max_length=10)) -> str:  # noqa: B008
        """The figures and charts of one night (default: the latest assessed)."""
        with engine().begin() as conn:
            days = pipeline.assessed_dates(conn)
            if not days:
                return _page(TITLE, f"<h1>{TITLE}</h1><p>还没有任何一晚的考核数据：运行一次夜间同步后再来。"
                                    "No night has been assessed yet.</p>")
            try:
                chosen = dt.date.fromisoformat(as_of) if as_of else days[0]
            except ValueError:
                raise HTTPException(status_code=404, detail=f"日期格式应为 YYYY-MM-DD：{as_of}。"
                                                            f"The date must be YYYY-MM-DD.") from None
            report = pipeline.load_assessment(conn, chosen)
        if report is None:
            raise HTTPException(status_code=404, detail=f"{chosen.isoformat()} 没有考核数据（可选日期见下拉列表）。"
                                                        f"No night was assessed on {chosen.isoformat()}.")
        body = assessment_report.page_body(report, assessment_report.charts(report), _picker(days, chosen))
        return _page(f"{TITLE} {chosen.isoformat()}", body)

    return app
