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


def _no_password(url: str | None, what: str) -> str | None:
    import sqlalchemy as sa

    if url and "://" in url and sa.engine.make_url(url).password:
        raise ValueError(f"{what} holds a password; params are shown in the UI and travel through XCom: put the "
                         "credentials in an Airflow connection and name it instead")
    return url


def build_config(params: dict[str, Any], dag_id: str, run_id: str, logical_date: dt.datetime | None,
                 triggered_by: str | None = None) -> dict:
    """What the configure task hands on through XCom: plain values and connection ids, never a URL with a
    password (resolve_config turns it into a RunConfig inside each task)."""
    from .money import yuan_to_fen

    if not params.get("as_of") and logical_date is None:
        raise ValueError("a run without a logical date needs params.as_of")
    as_of = params.get("as_of") or as_of_for(logical_date)
    accept = tuple(params.get("accept_drop_change") or ())
    gates = {k: float(params[k]) for k in GATE_PARAMS if params.get(k) is not None}
    if params.get("max_reversal_amount") is not None:
        gates["max_reversal_fen"] = yuan_to_fen(str(params["max_reversal_amount"]))
    registry_conn = params.get("registry_connection")
    cfg = RunConfig(
        sources="" if registry_conn else str(params["sources"]), sources_conn_id=registry_conn or None,
        as_of=str(as_of), out=str(params["out"]),
        warehouse=_no_password(params.get("warehouse"), "params.warehouse") or "",
        warehouse_conn_id=params.get("warehouse_conn_id") or WAREHOUSE_CONN_ID,
        run_id=run_id, dag_id=dag_id, logical_date=logical_date.isoformat() if logical_date else None,
        expectations=params.get("expectations") or os.environ.get("SUBSIDY_LEDGER_EXPECTATIONS"),
        policy_dir=params.get("policy_dir") or os.environ.get("SUBSIDY_LEDGER_POLICY_DIR"),
        accept_drop_change=accept, accepted_by=(triggered_by or "unknown") if accept else None, **gates,
    )
    return cfg.to_dict()


WAREHOUSE_CONN_ID = os.environ.get("SUBSIDY_LEDGER_WAREHOUSE_CONN_ID", "subsidy_warehouse")


def connection_url(conn_id: str) -> str | None:
    """The SQLAlchemy URL of an Airflow connection, looked up through Airflow itself (environment variables,
    the metadata database or a secrets backend); None if there is no such connection.

    In a task the Task SDK answers; elsewhere (the api-server's plugin) Airflow's core does.
    """
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # not inside a task (no supervisor to ask), or no such connection
        try:
            from airflow.models.connection import Connection as CoreConnection

            conn = CoreConnection.get_connection_from_secrets(conn_id)
        except Exception:
            return None
    return sqlalchemy_url(conn.get_uri(), conn.extra_dejson)


def warehouse_from_environment() -> str:
    """The warehouse URL outside a task: the subsidy_warehouse connection, else $SUBSIDY_LEDGER_WAREHOUSE, else
    the default."""
    return connection_url(WAREHOUSE_CONN_ID) or warehouse_url(None)


def resolve_config(values: dict, lookup=connection_url) -> RunConfig:
    """The RunConfig a task runs with: connection ids from XCom resolved to URLs here, in the task, so that no
    URL with a password ever travels through XCom or a log."""
    values = dict(values)
    if not values.get("warehouse"):
        conn_id = values.get("warehouse_conn_id") or WAREHOUSE_CONN_ID
        values["warehouse"] = lookup(conn_id) or warehouse_url(None)
    if values.get("sources_conn_id"):
        url = lookup(values["sources_conn_id"])
        if not url:
            raise ValueError(f"no Airflow connection {values['sources_conn_id']!r} for the registry database")
        values["sources"] = url
    return RunConfig(**values)


def extracts_folder() -> str | None:
    """Where the DAG writes extracts (and Data Docs): $SUBSIDY_LEDGER_OUT."""
    return os.environ.get("SUBSIDY_LEDGER_OUT")


ALERT_EMAIL_ENV = "SUBSIDY_LEDGER_ALERT_EMAIL"
SMTP_CONN_ENV = "SUBSIDY_LEDGER_SMTP_CONN_ID"
NOTIFIERS_ENV = "SUBSIDY_LEDGER_NOTIFIERS"
ALERT_SUBJECT = "[subsidy-ledger] {{ ti.dag_id }}.{{ ti.task_id }} failed (try {{ ti.try_number }}, {{ run_id }})"
ALERT_BODY = ("<p>南浔区职业技能提升补贴夜间同步失败。The nightly subsidy sync failed.</p>"
              "<p>{{ ti.dag_id }}.{{ ti.task_id }}, run {{ run_id }}, try {{ ti.try_number }}</p>"
              "<pre>{{ exception | string | e }}</pre>"
              "<p>Nothing after the failed task ran; the warehouse's <code>alerts</code> table has the same line.</p>")


def failure_callbacks() -> list:
    """The DAG's on_failure_callback list: the warehouse alert row; Airflow's SMTP notifier when
    $SUBSIDY_LEDGER_ALERT_EMAIL names addresses (comma-separated; the SMTP connection is
    $SUBSIDY_LEDGER_SMTP_CONN_ID or Airflow's [email] email_conn_id); and any other notifier named in
    $SUBSIDY_LEDGER_NOTIFIERS as "package.module:attribute" (a BaseNotifier instance, or a class made with no
    arguments), comma-separated, e.g. a Slack or DingTalk provider's notifier configured in a module of yours."""
    callbacks: list = [task_failed]
    address = os.environ.get(ALERT_EMAIL_ENV)
    if address:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        callbacks.append(SmtpNotifier(to=[a.strip() for a in address.split(",") if a.strip()], subject=ALERT_SUBJECT,
                                      html_content=ALERT_BODY, smtp_conn_id=os.environ.get(SMTP_CONN_ENV)))
    for spec in (s.strip() for s in os.environ.get(NOTIFIERS_ENV, "").split(",")):
        if spec:
            callbacks.append(load_notifier(spec))
    return callbacks


def load_notifier(spec: str):
    """A notifier from "package.module:attribute"; a ValueError that names the spec if it cannot be loaded."""
    import importlib

    module, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"${NOTIFIERS_ENV}: cannot load {spec!r} ({exc}); write package.module:attribute") from None
    return obj() if isinstance(obj, type) else obj


def task_failed(context: dict) -> None:
    """Airflow failure callback: an alert row in the warehouse (e-mail and other channels are notifiers, see
    failure_callbacks). Never raises: a broken alert must not hide the task's own error."""
    import logging

    from . import pipeline, run_record, warehouse

    log = logging.getLogger(__name__)
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    run_id = getattr(ti, "run_id", None) or context.get("run_id")
    error = context.get("exception")
    message = f"{dag_id}.{task_id} failed (try {getattr(ti, 'try_number', '?')}): {type(error).__name__}: {error}"
    try:
        values = ti.xcom_pull(task_ids="configure") if ti is not None and task_id != "configure" else None
        cfg = resolve_config(values) if values else None
        engine = warehouse.connect(cfg.warehouse if cfg else warehouse_from_environment())
        step = getattr(context.get("task"), "stage", None)  # a StageOperator's step; configure has none
        with engine.begin() as conn:
            pipeline.raise_alert(conn, run_id, dag_id, task_id, "task_failed", message)
            if cfg and step:
                run_record.fail(conn, cfg.run_id, step, message)
        engine.dispose()
        if cfg:  # the run is over: its scratch files (full identity numbers) go
            pipeline.discard_work(cfg)
    except Exception:  # the alert is best effort; the task's own failure stands regardless
        log.exception("could not record the alert: %s", message)
