"""Glue between Airflow's run context and the pipeline's RunConfig, kept free of Airflow imports."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from .pipeline import RunConfig
from .warehouse import warehouse_url

TIMEZONE = "Asia/Shanghai"


def as_of_for(logical_date: dt.datetime, tz: str = TIMEZONE) -> str:
    """The as-of date of a scheduled run: its logical date's calendar day in Nanxun's time zone."""
    from zoneinfo import ZoneInfo

    return logical_date.astimezone(ZoneInfo(tz)).date().isoformat()


def sqlalchemy_url(uri: str | None, extra: dict[str, Any] | None = None) -> str | None:
    """An SQLAlchemy URL from an Airflow connection: extra['sqlalchemy_url'] wins, else its URI."""
    if extra and extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    if not uri:
        return None
    if uri.startswith("postgres://"):  # Airflow's scheme for PostgreSQL; SQLAlchemy wants postgresql
        return "postgresql+psycopg2://" + uri.removeprefix("postgres://")
    return uri


GATE_PARAMS = ("max_quarantine_share", "max_row_loss_share", "max_reversal_share")


def build_config(params: dict[str, Any], dag_id: str, run_id: str, logical_date: dt.datetime | None,
                 connection_url: str | None, triggered_by: str | None = None) -> RunConfig:
    """RunConfig of one DAG run: params override, else the logical date and the warehouse connection."""
    from .money import yuan_to_fen
    from .registries import REGISTRIES

    if not params.get("as_of") and logical_date is None:
        raise ValueError("a run without a logical date needs params.as_of")
    as_of = params.get("as_of") or as_of_for(logical_date)
    accept = tuple(params.get("accept_drop_change") or ())
    unknown = sorted(set(accept) - set(REGISTRIES) - {"reversals"})
    if unknown:
        raise ValueError(f"accept_drop_change names no registry: {', '.join(unknown)}")
    gates = {k: float(params[k]) for k in GATE_PARAMS if params.get(k) is not None}
    if params.get("max_reversal_amount") is not None:
        gates["max_reversal_fen"] = yuan_to_fen(str(params["max_reversal_amount"]))
    return RunConfig(
        sources=str(params["sources"]), as_of=str(as_of), out=str(params["out"]),
        warehouse=params.get("warehouse") or connection_url or warehouse_url(None),
        run_id=run_id, dag_id=dag_id, logical_date=logical_date.isoformat() if logical_date else None,
        expectations=params.get("expectations") or os.environ.get("SUBSIDY_LEDGER_EXPECTATIONS"),
        policy_dir=params.get("policy_dir") or os.environ.get("SUBSIDY_LEDGER_POLICY_DIR"),
        accept_drop_change=accept, accepted_by=(triggered_by or "unknown") if accept else None, **gates,
    )


def warehouse_from_environment() -> str:
    """The warehouse URL outside a task: the subsidy_warehouse connection from the environment, else
    $SUBSIDY_LEDGER_WAREHOUSE, else the default."""
    import json

    conn = os.environ.get("AIRFLOW_CONN_SUBSIDY_WAREHOUSE")
    if conn:
        if conn.lstrip().startswith("{"):
            doc = json.loads(conn)
            url = sqlalchemy_url(doc.get("uri"), doc.get("extra") or {})
        else:
            url = sqlalchemy_url(conn)
        if url:
            return url
    return warehouse_url(None)


def extracts_folder() -> str | None:
    """Where the DAG writes extracts (and Data Docs): $SUBSIDY_LEDGER_OUT."""
    return os.environ.get("SUBSIDY_LEDGER_OUT")


ALERT_EMAIL_ENV = "SUBSIDY_LEDGER_ALERT_EMAIL"


def task_failed(context: dict) -> None:
    """Airflow failure callback: an alert row in the warehouse, and an e-mail when an address is configured
    (off by default). Never raises: a broken alert must not hide the task's own error."""
    import logging

    from . import pipeline, warehouse

    log = logging.getLogger(__name__)
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    error = context.get("exception")
    message = f"{dag_id}.{task_id} failed (try {getattr(ti, 'try_number', '?')}): {type(error).__name__}: {error}"
    try:
        cfg = ti.xcom_pull(task_ids="configure") if ti is not None and task_id != "configure" else None
        url = (cfg or {}).get("warehouse") or warehouse_from_environment()
        engine = warehouse.connect(url)
        with engine.begin() as conn:
            pipeline.raise_alert(conn, run_id, dag_id, task_id, "task_failed", message)
        engine.dispose()
    except Exception:  # the alert is best effort; the task's own failure stands regardless
        log.exception("could not record the alert: %s", message)
    address = os.environ.get(ALERT_EMAIL_ENV)
    if address:
        try:
            from airflow.utils.email import send_email

            send_email(address, f"[subsidy-ledger] {dag_id}.{task_id} failed", f"<pre>{message}</pre>")
        except Exception:  # the e-mail is best effort too
            log.exception("could not send the alert e-mail to %s", address)
