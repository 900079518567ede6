"""Airflow glue without Airflow running: the failure notifiers (orchestration.failure_callbacks)."""

import pytest
from subsidy_ledger import orchestration


def test_without_settings_only_the_warehouse_alert(monkeypatch):
    monkeypatch.delenv(orchestration.ALERT_EMAIL_ENV, raising=False)
    monkeypatch.delenv(orchestration.NOTIFIERS_ENV, raising=False)
    assert orchestration.failure_callbacks() == [orchestration.task_failed]


def test_an_address_adds_the_smtp_notifier_and_others_load_by_name(monkeypatch):
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    monkeypatch.setenv(orchestration.ALERT_EMAIL_ENV, "finance@nanxun.gov.cn, ops@nanxun.gov.cn")
    monkeypatch.setenv(orchestration.SMTP_CONN_ENV, "bureau_smtp")
    monkeypatch.setenv(orchestration.NOTIFIERS_ENV, "tests.dags.probe_notifier:Probe")
    task_failed, smtp, probe = orchestration.failure_callbacks()
    assert task_failed is orchestration.task_failed and isinstance(smtp, SmtpNotifier)
    assert smtp.to == ["finance@nanxun.gov.cn", "ops@nanxun.gov.cn"] and smtp.smtp_conn_id == "bureau_smtp"
    assert "{{ ti.task_id }}" in smtp.subject and "| e" in smtp.html_content  # the error is escaped in HTML
    assert type(probe).__name__ == "Probe"


def test_a_notifier_that_cannot_be_loaded_is_named(monkeypatch):
    monkeypatch.setenv(orchestration.NOTIFIERS_ENV, "no_such_module:Thing")
    with pytest.raises(ValueError, match="no_such_module:Thing"):
        orchestration.failure_callbacks()
