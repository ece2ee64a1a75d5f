"""An export's arguments checked and normalised: dataset, format, and filters with their UTC bounds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs.billing.exports.datasets import DATASETS, FORMATS, Dataset
from jobs.billing.money import checked_currency, minor_exponent
from jobs.platform.errors import PermanentError


@dataclass(frozen=True)
class ExportRequest:
    """A validated export: which dataset, which format, and the normalised filters."""

    dataset: Dataset
    format: str
    filters: dict[str, Any]
    #: The UTC bounds [start, end) the date filters stand for, or None.
    start: datetime | None = None
    end: datetime | None = None


def parse_export_request(
    dataset: object, format: object, filters: object, timezone: ZoneInfo
) -> ExportRequest:
    """Validate an export's arguments; raise PermanentError naming the first bad one.

    ``from`` and ``to`` are ISO dates (``YYYY-MM-DD``), both included, in ``timezone``.
    """
    if dataset not in DATASETS:
        raise PermanentError(f"unknown dataset {dataset!r}; the datasets are: {', '.join(DATASETS)}")
    if format not in FORMATS:
        raise PermanentError(f"unknown export format {format!r}; the formats are: {', '.join(FORMATS)}")
    spec = DATASETS[dataset]
    filters = {} if filters is None else filters
    if not isinstance(filters, Mapping):
        raise PermanentError(f"filters must be an object of filter names to values, got {filters!r}")
    allowed = ("from", "to", *spec.filters)
    for name in filters:
        if name not in allowed:
            raise PermanentError(
                f"unknown filter {name!r} for {dataset}; its filters are: {', '.join(allowed)}"
            )
    normalised: dict[str, Any] = {}
    first_day = _date_filter(filters, "from")
    last_day = _date_filter(filters, "to")
    if first_day and last_day and first_day > last_day:
        raise PermanentError(f"filter 'from' ({first_day}) is after 'to' ({last_day})")
    start = end = None
    if first_day:
        normalised["from"] = first_day.isoformat()
        start = _local_midnight_utc(first_day, timezone)
    if last_day:
        normalised["to"] = last_day.isoformat()
        # 'to' includes its whole day: the bound is the next local midnight.
        end = _local_midnight_utc(last_day + timedelta(days=1), timezone)
    if "status" in filters:
        normalised["status"] = _status_filter(spec, filters["status"])
    if "currency" in filters:
        normalised["currency"] = _currency_filter(filters["currency"])
    if "customer_id" in filters:
        normalised["customer_id"] = _customer_filter(filters["customer_id"])
    return ExportRequest(dataset=spec, format=format, filters=normalised, start=start, end=end)


def _date_filter(filters: Mapping[str, Any], name: str) -> date | None:
    value = filters.get(name)
    if value is None:
        return None
    problem = f"filter {name!r} must be an ISO date like 2025-01-31, got {value!r}"
    # date.fromisoformat also takes 20250131 and week dates; only the plain form is unambiguous to people.
    if not isinstance(value, str) or len(value) != 10:
        raise PermanentError(problem)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PermanentError(problem) from None


def _local_midnight_utc(day: date, timezone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone).astimezone(UTC)


def _status_filter(spec: Dataset, value: Any) -> str:
    if value not in spec.statuses:
        raise PermanentError(
            f"filter 'status' for {spec.name} must be one of {', '.join(spec.statuses)}, got {value!r}"
        )
    return value


def _currency_filter(value: Any) -> str:
    code = checked_currency(value, what="filter 'currency'")
    minor_exponent(code)  # refuses a code ISO 4217 does not list
    return code


def _customer_filter(value: Any) -> int:
    # bool is an int in Python; true is not customer 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PermanentError(f"filter 'customer_id' must be a positive whole number, got {value!r}")
    return value
