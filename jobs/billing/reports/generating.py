"""Generating a report: the period asked for, its figures, its files and its row, under a lock.

The lock (``jobs.platform.locks``) keeps two runs of one period from overlapping: a run that meets a
live one raises LockHeld and is retried; one whose holder died takes the lock over within seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs.billing.periods import Period, parse_fire_time, parse_period_start, previous_period
from jobs.billing.reports.figures import report_figures
from jobs.billing.reports.rendering import render_csv, render_html, report_file_stem
from jobs.billing.reports.store import store_report
from jobs.platform.context import current
from jobs.platform.defaults import REPORT_LANGUAGES
from jobs.platform.errors import PermanentError
from jobs.platform.locks import Lease, exclusive
from jobs.platform.storage import write_atomically

#: Report kind → period kind (jobs.billing.periods).
REPORT_PERIODS = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}


class ReportError(PermanentError):
    """Raised when a report is asked for in a language or for a period it cannot be made for."""


def generate_report(
    kind: str, *, period_start: str | None, fire_time: str | None, language: str | None
) -> dict[str, Any]:
    """Generate (or regenerate) the ``kind`` report; the body shared by the four actors."""
    settings = current().settings
    language = language or settings.report_language
    if language not in REPORT_LANGUAGES:
        raise ReportError(f"language must be one of {', '.join(REPORT_LANGUAGES)}, got {language!r}")
    period = _requested_period(kind, period_start, fire_time, settings.timezone)
    with exclusive(f"generate_{kind}_report:{period.start_utc:%Y-%m-%dT%H:%M}") as lock:
        return _generate(kind, period, language, lock)


def _requested_period(kind: str, period_start: str | None, fire_time: str | None, zone: ZoneInfo) -> Period:
    period_kind = REPORT_PERIODS[kind]
    if period_start is not None:
        return parse_period_start(period_kind, period_start, zone)
    return previous_period(period_kind, parse_fire_time(fire_time), zone)


def _generate(kind: str, period: Period, language: str, lock: Lease) -> dict[str, Any]:
    runtime = current()
    settings = runtime.settings
    with runtime.sessions() as session:
        figures = report_figures(session, period)
        data = {"kind": kind, "period": _period_json(period), **figures}
        generated_at = datetime.now(UTC)
        stem = report_file_stem(kind, period)
        csv_path = settings.report_dir / f"{stem}.csv"
        html_path = settings.report_dir / f"{stem}.html"
        # The BOM lets spreadsheet programs read customer names in Chinese correctly.
        write_atomically(csv_path, render_csv(data), encoding="utf-8-sig")
        html = render_html(
            data,
            language=language,
            generated_at=generated_at.astimezone(period.zone),
            zone_name=period.zone.key,
        )
        write_atomically(html_path, html)
        report_id = store_report(
            session,
            kind=kind,
            period=period,
            language=language,
            data=data,
            csv_path=str(csv_path),
            html_path=str(html_path),
            expires_at=generated_at + timedelta(days=settings.report_file_ttl_days),
        )
        lock.check()
        session.commit()
    return {
        "report_id": report_id,
        "kind": kind,
        "period_start": period.start_local.isoformat(),
        "period_end": period.end_local.isoformat(),
        "revenue": {currency: figures["revenue"] for currency, figures in data["currencies"].items()},
        "csv_path": str(csv_path),
        "html_path": str(html_path),
    }


def _period_json(period: Period) -> dict[str, str]:
    return {
        "start": period.start_local.isoformat(),
        "end": period.end_local.isoformat(),
        "start_utc": period.start_utc.isoformat(),
        "end_utc": period.end_utc.isoformat(),
        "timezone": period.zone.key,
    }
