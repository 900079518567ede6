"""Custom Great Expectations for the contract's identifiers and dates, backed by python-stdnum.

Importing this module registers the expectations, so suites stored as JSON can name them.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from .identifiers import credit_code_valid, resident_id_valid

DATE_FORMAT = "%Y-%m-%d"


def iso_dates_ok(column: pd.Series, min_value: str | None, max_value: str | None) -> pd.Series:
    """True where a value is a real YYYY-MM-DD calendar date inside [min_value, max_value]."""
    text = column.astype("string")
    shaped = text.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False)
    parsed = pd.to_datetime(text.where(shaped), format=DATE_FORMAT, errors="coerce")
    ok = parsed.notna()
    if min_value:
        ok &= parsed >= pd.Timestamp(min_value)
    if max_value:
        ok &= parsed <= pd.Timestamp(max_value)
    return ok.astype(bool)


class ColumnValuesValidCnResidentId(ColumnMapMetricProvider):
    """Metric: each value is a valid GB 11643 resident identity number."""

    condition_metric_name = "column_values.valid_cn_resident_id"
    condition_value_keys = ("latest_birth_date",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, latest_birth_date=None, **kwargs):
        latest = dt.date.fromisoformat(latest_birth_date) if latest_birth_date else dt.date.max
        return resident_id_valid(column.astype("string"), latest)


class ExpectColumnValuesToBeValidCnResidentId(ColumnMapExpectation):
    """Expect resident identity numbers with a true check character, a real past birth date and a known area."""

    latest_birth_date: str | dict | None = None
    map_metric = "column_values.valid_cn_resident_id"
    success_keys = ("mostly", "latest_birth_date")


class ColumnValuesValidCnCreditCode(ColumnMapMetricProvider):
    """Metric: each value is a valid GB 32100 unified social credit code."""

    condition_metric_name = "column_values.valid_cn_credit_code"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return credit_code_valid(column.astype("string"))


class ExpectColumnValuesToBeValidCnCreditCode(ColumnMapExpectation):
    """Expect unified social credit codes with a true check character."""

    map_metric = "column_values.valid_cn_credit_code"
    success_keys = ("mostly",)


class ColumnValuesIsoDate(ColumnMapMetricProvider):
    """Metric: each value is a real YYYY-MM-DD date inside a range."""

    condition_metric_name = "column_values.iso_date"
    condition_value_keys = ("min_value", "max_value")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, min_value=None, max_value=None, **kwargs):
        return iso_dates_ok(column, min_value, max_value)


class ExpectColumnValuesToBeIsoDates(ColumnMapExpectation):
    """Expect real calendar dates written YYYY-MM-DD, optionally inside [min_value, max_value]."""

    min_value: str | dict | None = None
    max_value: str | dict | None = None
    map_metric = "column_values.iso_date"
    success_keys = ("mostly", "min_value", "max_value")
